"""Where counters live: in process memory (the embedded default) or in Redis (shared)."""

from bastion.ratelimit.stores._base import Store, StoreUnavailable
from bastion.ratelimit.stores.memory import MemoryStore
from bastion.ratelimit.stores.redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "Store", "StoreUnavailable"]
