"""Migration 0008 (a pending request's `kind` and `user_code`): `authorization_requests` matches
its table after upgrade; a device request in flight, marked the old way (the grant's URN as its
redirect URI, its user code in `state`), becomes kind=device with its user code, and the
downgrade turns it back; an authorization request is kept as it was. On a fresh SQLite file and
a fresh PostgreSQL database."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bastion.store import Database
from bastion.store.models import metadata

pytestmark = pytest.mark.anyio

DEVICE_SENTINEL = "urn:ietf:params:oauth:grant-type:device_code"
_INSERT = text(
    "INSERT INTO authorization_requests (id, session_hash, client_id, redirect_uri, scope, state, prompt,"
    " created_at, expires_at) VALUES (:id, 'h', 'c', :redirect_uri, 'openid', :state, '', 1, 2)"
)
_READ = text("SELECT id, redirect_uri, state FROM authorization_requests ORDER BY id")
_READ_KIND = text("SELECT id, redirect_uri, state, kind, user_code FROM authorization_requests ORDER BY id")


async def _migrate(database: Database, revision: str, downgrade: bool = False) -> None:
    move = command.downgrade if downgrade else command.upgrade
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync: move(database._alembic_config(sync), revision))


async def _columns(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("authorization_requests")}
        )


async def test_requests_in_flight_are_converted_both_ways(fresh_db_url):
    """Upgrade: the sentinel row becomes a device request; downgrade: it is a sentinel row again."""
    database = Database(fresh_db_url, pool_size=1)
    try:
        await _migrate(database, "0007")
        async with database.engine.begin() as conn:
            await conn.execute(_INSERT, {"id": "a", "redirect_uri": "https://rp.example/cb", "state": "xyz"})
            await conn.execute(_INSERT, {"id": "d", "redirect_uri": DEVICE_SENTINEL, "state": "BCDFGHJK"})

        await database.upgrade()
        async with database.engine.connect() as conn:
            upgraded = [tuple(row) for row in await conn.execute(_READ_KIND)]
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        await _migrate(database, "0007", downgrade=True)
        async with database.engine.connect() as conn:
            downgraded = [tuple(row) for row in await conn.execute(_READ)]
        columns = await _columns(database)
    finally:
        await database.dispose()

    assert upgraded == [
        ("a", "https://rp.example/cb", "xyz", "authorization", None),
        ("d", "", None, "device", "BCDFGHJK"),
    ]
    assert [d for d in differences if "authorization_requests" in repr(d)] == []
    assert downgraded == [("a", "https://rp.example/cb", "xyz"), ("d", DEVICE_SENTINEL, "BCDFGHJK")]
    assert not {"kind", "user_code"} & columns
