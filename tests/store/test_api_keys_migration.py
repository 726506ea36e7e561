"""Migration 0013 (`api_keys`): after upgrade the table matches `store.models.api_keys` and holds a
key; the downgrade drops it. On a fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bastion.store import Database
from bastion.store.models import metadata

pytestmark = pytest.mark.anyio

MIGRATION = importlib.import_module("bastion.store.migrations.versions.0013_api_keys")


async def _migrate(database: Database, revision: str, downgrade: bool = False) -> None:
    move = command.downgrade if downgrade else command.upgrade
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync: move(database._alembic_config(sync), revision))


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_api_keys_table_is_created_and_dropped(fresh_db_url):
    """Upgrade from the revision before: `api_keys` as in models.py, writable; downgrade: gone."""
    database = Database(fresh_db_url, pool_size=1)
    try:
        await _migrate(database, MIGRATION.down_revision)
        before = await _tables(database)
        await _migrate(database, MIGRATION.revision)
        async with database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_keys (key_id, owner, scopes, sha256, created_at)"
                    " VALUES ('k1', 'billing', 'a b', :digest, 1)"
                ),
                {"digest": "0" * 64},
            )
            stored = [tuple(r) for r in await conn.execute(text("SELECT key_id, revoked_at FROM api_keys"))]
            differences = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        await _migrate(database, MIGRATION.down_revision, downgrade=True)
        after = await _tables(database)
    finally:
        await database.dispose()

    assert "api_keys" not in before
    assert stored == [("k1", None)]
    assert [d for d in differences if "api_keys" in repr(d)] == []
    assert "api_keys" not in after
