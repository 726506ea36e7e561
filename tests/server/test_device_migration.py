"""Migration 0003 (the device_codes table): it matches the model exactly, and it downgrades to
0002 and upgrades again cleanly, on a fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bastion.store import Database
from bastion.store.models import metadata

pytestmark = pytest.mark.anyio


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_migration_matches_the_model_and_round_trips(fresh_db_url):
    """After upgrade device_codes equals its model; downgrade to 0002 drops device_codes; upgrade restores it."""
    database = Database(fresh_db_url, pool_size=1)
    try:
        await database.upgrade()
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        # Only this migration's table is judged here; other tables belong to other migrations.
        assert [d for d in differences if "device_codes" in repr(d)] == []
        assert "device_codes" in await _tables(database)

        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(database._alembic_config(sync), "0002"))
        downgraded = await _tables(database)
        await database.upgrade()

        assert "device_codes" not in downgraded
        assert "authorization_codes" in downgraded
        assert "device_codes" in await _tables(database)
    finally:
        await database.dispose()
