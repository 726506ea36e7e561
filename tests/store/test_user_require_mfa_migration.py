"""Migration 0012 (`users.require_mfa`): after upgrade the column matches the table and every
existing user is unmarked (the server's policy decides for them, as before); the downgrade
removes it and keeps the user. On a fresh SQLite file and a fresh PostgreSQL database."""

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

MIGRATION = importlib.import_module("bastion.store.migrations.versions.0012_user_require_mfa")
_INSERT = text(
    "INSERT INTO users (sub, username, email, email_verified, display_name, profile, roles, enabled,"
    " password_hash, totp_secret, totp_last_step, created_at, updated_at)"
    " VALUES ('s1', 'alice', 'a@example.com', true, 'Alice', '{}', 'admin', true, 'x', NULL, NULL, 1, 1)"
)


async def _migrate(database: Database, revision: str, downgrade: bool = False) -> None:
    move = command.downgrade if downgrade else command.upgrade
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync: move(database._alembic_config(sync), revision))


async def _columns(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return await conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns("users")})


async def test_require_mfa_is_added_unset_and_removed(fresh_db_url):
    """Upgrade: an existing user reads require_mfa false and the table matches the model;
    downgrade: the column is gone and the user is still there."""
    database = Database(fresh_db_url, pool_size=1)
    try:
        await _migrate(database, MIGRATION.down_revision)
        async with database.engine.begin() as conn:
            await conn.execute(_INSERT)

        await _migrate(database, MIGRATION.revision)
        async with database.engine.connect() as conn:
            upgraded = [tuple(row) for row in await conn.execute(text("SELECT sub, require_mfa FROM users"))]
            differences = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        await _migrate(database, MIGRATION.down_revision, downgrade=True)
        async with database.engine.connect() as conn:
            kept = [tuple(row) for row in await conn.execute(text("SELECT sub, username FROM users"))]
        columns = await _columns(database)
    finally:
        await database.dispose()

    assert upgraded == [("s1", False)]
    assert [d for d in differences if "require_mfa" in repr(d) and "users" in repr(d)] == []
    assert kept == [("s1", "alice")]
    assert "require_mfa" not in columns
