"""How busy a `Database`'s connection pool is, for the server's metrics.

Read from the engine's pool as it stands (no event hooks, nothing on the statement path): the
connections checked out now, and the callers queued for one because the pool and its overflow
are all in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.store.database import Database


@dataclass(frozen=True)
class PoolStatus:
    in_use: int
    waiting: int
    size: int


def pool_status(database: Database) -> PoolStatus:
    """The pool's connections in use, callers waiting for one, and its configured size."""
    pool: Any = database.engine.sync_engine.pool
    in_use = int(pool.checkedout()) if hasattr(pool, "checkedout") else 0
    size = int(pool.size()) if hasattr(pool, "size") else 0
    return PoolStatus(in_use=in_use, waiting=_waiting(pool), size=size)


def _waiting(pool: Any) -> int:
    """Callers blocked in the pool's queue: the asyncio queue's pending getters (SQLAlchemy's
    `AsyncAdaptedQueue` wraps an `asyncio.Queue`; a pool without one never queues)."""
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)
    getters = getattr(queue, "_getters", None)
    return sum(1 for waiter in getters if not waiter.done()) if getters is not None else 0
