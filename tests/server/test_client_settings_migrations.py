"""Migrations 0005+ (per-client OpenID Connect settings on `clients`): each matches the model,
downgrades to the revision before it (dropping only its columns) and upgrades again, on a fresh
SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bastion.store import Database
from bastion.store.models import metadata

pytestmark = pytest.mark.anyio

# revision -> (previous revision, the clients columns it adds)
MIGRATIONS = {
    "0005": ("0004", {"post_logout_redirect_uris"}),
    "0006": ("0005", {"id_token_signed_response_alg"}),
    "0007": ("0006", {"pkce_optional_with_nonce"}),
    "0010": ("0009", {"require_mfa"}),
}


async def _client_columns(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns("clients")}))


@pytest.mark.parametrize("revision", sorted(MIGRATIONS))
async def test_migration_matches_the_model_and_round_trips(fresh_db_url, revision):
    """After upgrade `clients` equals its model; downgrading to the revision before drops exactly
    the columns of it and the later ones; upgrading restores them."""
    previous, _ = MIGRATIONS[revision]
    added = set().union(*(columns for rev, (_, columns) in MIGRATIONS.items() if rev >= revision))
    database = Database(fresh_db_url, pool_size=1)
    try:
        await database.upgrade()
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert [d for d in differences if "clients" in repr(d)] == []
        upgraded = await _client_columns(database)

        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(database._alembic_config(sync), previous))
        downgraded = await _client_columns(database)
        await database.upgrade()

        assert added <= upgraded
        assert downgraded == upgraded - added
        assert await _client_columns(database) == upgraded
    finally:
        await database.dispose()
