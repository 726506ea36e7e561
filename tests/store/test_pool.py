"""`pool_status`: the connections a `Database` has checked out and the callers waiting for one,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import Database
from bastion.store.pool import pool_status

pytestmark = pytest.mark.anyio


async def test_in_use_and_waiting_follow_the_pool(db_url: str) -> None:
    """With every connection of the pool (and its overflow) held, one more caller waits; when one
    is given back the caller gets it and nobody waits."""
    database = Database(db_url, pool_size=1)
    capacity = 1 if not database.is_sqlite else 15  # PostgreSQL: 1 + 0 overflow; SQLite: 5 + 10
    try:
        idle = pool_status(database)
        held = [await database.engine.connect().start() for _ in range(capacity)]
        full = pool_status(database)
        waiter = asyncio.create_task(database.engine.connect().start())
        for _ in range(100):
            if pool_status(database).waiting:
                break
            await asyncio.sleep(0.01)
        queued = pool_status(database)
        await held.pop().close()
        held.append(await asyncio.wait_for(waiter, 10))
        served = pool_status(database)
        for connection in held:
            await connection.close()
        after = pool_status(database)
    finally:
        await database.dispose()

    assert (idle.in_use, idle.waiting) == (0, 0)
    assert (full.in_use, full.waiting) == (capacity, 0)
    assert (queued.in_use, queued.waiting) == (capacity, 1)
    assert (served.in_use, served.waiting) == (capacity, 0)
    assert (after.in_use, after.waiting) == (0, 0)
