"""A private redis-server on a free port, for tests that stop Redis (never the shared one):
the shared helper's, under the name these tests know."""

from __future__ import annotations

from tests._private_services import PrivateRedis as RedisServer
from tests._private_services import free_port

__all__ = ["RedisServer", "free_port"]
