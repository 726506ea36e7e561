"""Migration 0011 (the server's `audit_log`): after upgrade the table matches `store.models`; the
downgrade removes it; a table the guard's `SqlAuditSink` made before is kept with its rows. On a
fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bastion.guard.audit import audit_table
from bastion.store import Database
from bastion.store.models import metadata

pytestmark = pytest.mark.anyio

MIGRATION = importlib.import_module("bastion.store.migrations.versions.0011_audit_log")


async def _migrate(database: Database, revision: str, downgrade: bool = False) -> None:
    move = command.downgrade if downgrade else command.upgrade
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync: move(database._alembic_config(sync), revision))


async def _has_table(database: Database) -> bool:
    async with database.engine.connect() as conn:
        return await conn.run_sync(lambda sync: sa.inspect(sync).has_table("audit_log"))


async def test_upgrade_creates_the_table_and_downgrade_removes_it(fresh_db_url):
    """Upgrade: `audit_log` as the models say (no difference left); downgrade: gone."""
    database = Database(fresh_db_url, pool_size=1)
    try:
        await _migrate(database, MIGRATION.down_revision)
        assert not await _has_table(database)
        await _migrate(database, MIGRATION.revision)
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        assert [d for d in differences if "audit_log" in repr(d)] == []
        await _migrate(database, MIGRATION.down_revision, downgrade=True)
        assert not await _has_table(database)
    finally:
        await database.dispose()


async def test_a_guard_table_already_there_is_kept(fresh_db_url):
    """A database where the guard made `audit_log` upgrades without touching its rows."""
    database = Database(fresh_db_url, pool_size=1)
    try:
        await _migrate(database, MIGRATION.down_revision)
        table = audit_table(sa.MetaData())
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: table.create(sync))
            await conn.execute(
                table.insert().values(
                    seq=1, time=1.0, actor="anonymous", action="x", outcome="allowed", entry="{}", hash="h"
                )
            )
        await _migrate(database, MIGRATION.revision)
        async with database.engine.connect() as conn:
            count = (await conn.execute(sa.text("SELECT count(*) FROM audit_log"))).scalar_one()
    finally:
        await database.dispose()

    assert count == 1


def test_the_server_table_has_the_guard_table_columns():
    """`store.models.audit_log` and the guard's `audit_table` have the same columns and types, so
    `bastion audit verify --db` and the guard's sink read either."""
    ours = metadata.tables["audit_log"]
    guards = audit_table(sa.MetaData())
    assert [(c.name, type(c.type), c.nullable, c.primary_key) for c in ours.columns] == [
        (c.name, type(c.type), c.nullable, c.primary_key) for c in guards.columns
    ]
