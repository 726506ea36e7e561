"""Count the SQL statements a piece of work sends to the database, at the driver.

Each connection the pool hands out gets the driver's own hook when it is checked out: asyncpg's
query logger, sqlite3's trace callback (through aiosqlite). Both see every statement the server
runs, `BEGIN` and `COMMIT` included, whichever way it was sent (`store._sql` on the driver's
connection, or a SQLAlchemy `Connection`). Round trips, not Python calls, are what a grant pays.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.util import await_only

from bastion.store import Database

# sqlite3 reports these around its own work; they are not statements the store sent.
_SQLITE_NOISE = ("PRAGMA",)


@asynccontextmanager
async def counting(database: Database) -> AsyncIterator[list[str]]:
    """The statements `database` runs while the block is open, in order (their SQL text)."""
    seen: list[str] = []
    active = True
    logged: list[Any] = []

    def on_postgres(record: Any) -> None:
        if active:
            seen.append(record.query)

    def on_sqlite(statement: str) -> None:
        if active and not statement.lstrip().upper().startswith(_SQLITE_NOISE):
            seen.append(statement)

    def hook(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if database.is_sqlite:
            await_only(driver.set_trace_callback(on_sqlite))
        else:
            driver.add_query_logger(on_postgres)
            logged.append(driver)

    pool = database.engine.sync_engine.pool
    event.listen(pool, "checkout", hook)
    try:
        yield seen
        # asyncpg calls its query loggers soon after a statement, not during it.
        for _ in range(3):
            await asyncio.sleep(0)
    finally:
        active = False
        event.remove(pool, "checkout", hook)
        for driver in logged:
            driver.remove_query_logger(on_postgres)


def kinds(statements: list[str]) -> list[str]:
    """Each statement's first word (`SELECT`, `INSERT`, `WITH`, `BEGIN`, ...), for messages."""
    return [s.split(None, 1)[0].upper() for s in statements]
