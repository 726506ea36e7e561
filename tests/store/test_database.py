"""The PostgreSQL pool: idle connections are pinged before use, busy ones are not.

A connection the server has closed (a restart, a failover, an idle timeout) must not fail a
request after a quiet spell; while traffic flows, no ping costs round trips, and a connection
that died under a statement fails that statement only.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bastion.store import Database, codes

pytestmark = pytest.mark.anyio


async def _kill_other_backends(url: str) -> int:
    """Terminate every other connection to the test database, as a server restart would, and
    wait (up to 5 s each) until they are gone."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return int(killed)


async def _backend_pid(database: Database) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(postgres_database: str) -> None:
    database = Database(postgres_database, pool_size=1, ping_after_idle=0.0)
    try:
        before = await _backend_pid(database)
        assert await _kill_other_backends(postgres_database) >= 1
        # Through SQLAlchemy's connection and straight through the driver, the next statement just works.
        assert await _backend_pid(database) != before
        await _kill_other_backends(postgres_database)
        assert await codes.with_user(database, "no such code") == (None, None)
    finally:
        await database.dispose()


async def test_without_the_idle_ping_the_first_statement_on_a_dead_connection_fails(postgres_database: str) -> None:
    # The control for the test above: with no ping, the dead connection is handed out once.
    database = Database(postgres_database, pool_size=1, ping_after_idle=3600.0)
    try:
        before = await _backend_pid(database)
        await _kill_other_backends(postgres_database)
        with pytest.raises(DBAPIError):
            await _backend_pid(database)
        # The failure invalidated the pool: the next checkout connects afresh.
        assert await _backend_pid(database) != before
    finally:
        await database.dispose()


async def test_a_connection_that_died_under_a_statement_is_not_handed_out_again(postgres_database: str) -> None:
    """A statement on a connection the server killed fails once; the store gives that connection
    up instead of returning it to the pool, so the next statement gets a new one."""
    database = Database(postgres_database, pool_size=1, ping_after_idle=3600.0)
    try:
        assert await codes.with_user(database, "no such code") == (None, None)
        await _kill_other_backends(postgres_database)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
            await codes.with_user(database, "no such code")

        assert await codes.with_user(database, "no such code") == (None, None)
    finally:
        await database.dispose()
