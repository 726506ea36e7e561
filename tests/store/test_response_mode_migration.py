"""Migration 0009 (a pending request's `response_mode`): `authorization_requests` matches its
table after upgrade, a request in flight gets `query` (how it was going to be answered), and the
downgrade drops the column and keeps the request. On a fresh SQLite file and a fresh PostgreSQL
database."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bastion.store import Database
from bastion.store.models import metadata

pytestmark = pytest.mark.anyio

_INSERT = text(
    "INSERT INTO authorization_requests (id, session_hash, client_id, redirect_uri, scope, state, prompt,"
    " created_at, expires_at) VALUES ('a', 'h', 'c', 'https://rp.example/cb', 'openid', 'xyz', '', 1, 2)"
)
_READ = text("SELECT id, redirect_uri, state FROM authorization_requests")
_READ_MODE = text("SELECT id, redirect_uri, state, response_mode FROM authorization_requests")


async def _migrate(database: Database, revision: str, downgrade: bool = False) -> None:
    move = command.downgrade if downgrade else command.upgrade
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync: move(database._alembic_config(sync), revision))


async def test_request_in_flight_is_answered_in_the_query_both_ways(fresh_db_url):
    """Upgrade: the request in flight has response_mode query; downgrade: the column is gone, the request kept."""
    database = Database(fresh_db_url, pool_size=1)
    try:
        await _migrate(database, "0008")
        async with database.engine.begin() as conn:
            await conn.execute(_INSERT)

        await database.upgrade()
        async with database.engine.connect() as conn:
            upgraded = [tuple(row) for row in await conn.execute(_READ_MODE)]
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        await _migrate(database, "0008", downgrade=True)
        async with database.engine.connect() as conn:
            downgraded = [tuple(row) for row in await conn.execute(_READ)]
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("authorization_requests")}
            )
    finally:
        await database.dispose()

    assert upgraded == [("a", "https://rp.example/cb", "xyz", "query")]
    assert [d for d in differences if "authorization_requests" in repr(d)] == []
    assert downgraded == [("a", "https://rp.example/cb", "xyz")]
    assert "response_mode" not in columns
