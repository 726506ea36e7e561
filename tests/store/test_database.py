"""The PostgreSQL pool: idle connections are pinged before use, busy ones are not.

A connection the server has closed (a restart, a failover, an idle timeout) must not fail a
request after a quiet spell; while traffic flows, no ping costs round trips, and a connection
that died under a statement fails that statement only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bastion.store import Database, DatabaseUnavailable, codes
from bastion.store.database import is_unavailable
from tests._private_services import free_port

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


async def test_a_connection_the_server_killed_is_not_handed_out_again(postgres_database: str) -> None:
    """A pooled connection the server killed is given up: noticed closed at checkout (no statement
    fails) or, when the close has not arrived yet, failing its one statement as DatabaseUnavailable;
    the next statement gets a new connection."""
    database = Database(postgres_database, pool_size=1, ping_after_idle=3600.0)
    try:
        assert await codes.with_user(database, "no such code") == (None, None)
        await _kill_other_backends(postgres_database)
        with contextlib.suppress(DatabaseUnavailable):
            await codes.with_user(database, "no such code")

        assert await codes.with_user(database, "no such code") == (None, None)
    finally:
        await database.dispose()


async def test_a_statement_on_a_database_that_refuses_connections_raises_database_unavailable() -> None:
    """Nothing listening: the statement raises DatabaseUnavailable (what the server answers 503 for)."""
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test", timeout=2)
    try:
        with pytest.raises(DatabaseUnavailable, match=r"^the database is unavailable: ConnectionRefusedError"):
            await codes.with_user(database, "no such code")
        assert await database.readiness() is not None
    finally:
        await database.dispose()


async def test_a_database_that_never_answers_raises_database_unavailable_after_the_timeout() -> None:
    """A server that accepts connections and says nothing: the connect gives up after the database
    timeout and the statement raises DatabaseUnavailable, never hangs."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test", timeout=0.5)
        try:
            with pytest.raises(DatabaseUnavailable, match=r"^the database is unavailable: TimeoutError"):
                await asyncio.wait_for(codes.with_user(database, "no such code"), 10)
            assert (await database.readiness(0.5) or "").startswith("unreachable: TimeoutError")
        finally:
            await database.dispose()


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        pytest.param(ConnectionRefusedError(111, "refused"), True, id="refused"),
        pytest.param(TimeoutError(), True, id="timeout"),
        pytest.param(asyncpg.exceptions.AdminShutdownError("terminating"), True, id="admin-shutdown"),
        pytest.param(asyncpg.exceptions.CannotConnectNowError("starting up"), True, id="starting-up"),
        pytest.param(asyncpg.exceptions.TooManyConnectionsError("too many"), True, id="too-many-connections"),
        pytest.param(asyncpg.exceptions.ConnectionDoesNotExistError("closed"), True, id="connection-closed"),
        pytest.param(asyncpg.exceptions.UniqueViolationError("duplicate"), False, id="unique-violation"),
        pytest.param(asyncpg.exceptions.UndefinedTableError("no table"), False, id="undefined-table"),
        pytest.param(ValueError("a bug"), False, id="bug"),
    ],
)
def test_is_unavailable_tells_an_outage_from_a_wrong_statement(error: Exception, unavailable: bool) -> None:
    """Connection, resource and operator-intervention errors are outages; a statement's own are not."""
    assert is_unavailable(error) is unavailable


def test_is_unavailable_follows_causes_but_not_what_was_being_handled() -> None:
    """An error raised from an outage is one; an error raised while handling one is not."""
    outage = ConnectionResetError()

    def while_handling() -> None:
        try:
            raise outage
        except ConnectionResetError:
            raise ValueError("unrelated") from None

    with pytest.raises(RuntimeError) as wrapped:
        raise RuntimeError("wrapped") from outage
    with pytest.raises(ValueError, match="unrelated") as unrelated:
        while_handling()

    assert is_unavailable(wrapped.value)
    assert not is_unavailable(unrelated.value)
