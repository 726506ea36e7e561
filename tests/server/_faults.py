"""Honest faults: make part of the real database disappear for a while, then restore it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from bastion.store import Database


@asynccontextmanager
async def table_gone(database_url: str, table: str) -> AsyncIterator[None]:
    """Rename `table` away (as a botched migration or an operator's mistake would), then put it back."""
    moved = f"{table}_gone_for_test"
    database = Database(database_url, pool_size=1)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {table} RENAME TO {moved}"))
        try:
            yield
        finally:
            async with database.engine.begin() as conn:
                await conn.execute(text(f"ALTER TABLE {moved} RENAME TO {table}"))
    finally:
        await database.dispose()
