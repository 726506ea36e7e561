"""Upgrades keep every row: a database holding data at an older revision is migrated to head
with nothing lost, on a fresh SQLite file and a fresh PostgreSQL database.

On SQLite a migration that rebuilds a table (Alembic's batch mode copies it, drops the old one
and renames the copy) once ran with foreign keys on, so the drop's implicit delete cascaded and
emptied every table referencing `clients`: secrets, consents, device codes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from bastion.store import Database
from tests.cli._run import bastion

pytestmark = pytest.mark.anyio

# Migrations 0007 and 0010 rebuild `clients` on SQLite (a column with a SQL expression default).
BEFORE_CLIENTS_REBUILDS = "0006"
TABLES = (
    "clients",
    "client_secrets",
    "users",
    "recovery_codes",
    "browser_sessions",
    "consents",
    "device_codes",
)
# A row in every table with a foreign key, and the rows they point to, at revision 0006.
_ROWS_AT_0006 = (
    "INSERT INTO clients (client_id, name, client_type, auth_method, grant_types, scopes, audiences,"
    " redirect_uris, token_lifetime, introspect, enabled, jwks, jwks_uri, token_endpoint_audience, created_at,"
    " updated_at, post_logout_redirect_uris, id_token_signed_response_alg) VALUES ('c1', 'C', 'confidential',"
    " 'client_secret_basic', 'client_credentials', 'read', '', '', NULL, false, true, NULL, NULL, false, 1, 1,"
    " '', 'RS256')",
    "INSERT INTO client_secrets (client_id, secret_hash, created_at, expires_at) VALUES ('c1', 'h', 1, NULL)",
    "INSERT INTO users (sub, username, email, email_verified, display_name, profile, roles, enabled,"
    " password_hash, totp_secret, totp_last_step, created_at, updated_at) VALUES ('s1', 'alice',"
    " 'alice@example.com', true, 'Alice', '{}', '', true, 'x', NULL, NULL, 1, 1)",
    "INSERT INTO recovery_codes (sub, code_hash, used_at) VALUES ('s1', 'r', NULL)",
    "INSERT INTO browser_sessions (id_hash, sid, sub, stage, amr, auth_time, csrf_token, created_at,"
    " last_seen_at, expires_at) VALUES ('b1', 'sid1', 's1', 'authenticated', 'pwd', 1, 'csrf', 1, 1, 2)",
    "INSERT INTO consents (sub, client_id, scopes, granted_at) VALUES ('s1', 'c1', 'read', 1)",
    "INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, status, created_at, expires_at,"
    " interval) VALUES ('d1', 'BCDFGHJK', 'c1', 'read', 'pending', 1, 2, 5)",
)


async def _counts(database: Database) -> dict[str, int]:
    async with database.engine.connect() as conn:
        return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in TABLES}  # noqa: S608 - fixed names


async def _at_0006_with_rows(url: str) -> Database:
    database = Database(url, pool_size=1)
    await database.upgrade(BEFORE_CLIENTS_REBUILDS)
    async with database.engine.begin() as conn:
        for statement in _ROWS_AT_0006:
            await conn.execute(text(statement))
    return database


async def test_rows_referencing_a_rebuilt_table_survive_upgrade_and_downgrade(fresh_db_url):
    """A database with a row in every table at 0006, upgraded to head, still has each of them,
    and again after a downgrade to 0006."""
    database = await _at_0006_with_rows(fresh_db_url)
    try:
        await database.upgrade()
        upgraded = await _counts(database), await database.current_revision()
        await database.downgrade(BEFORE_CLIENTS_REBUILDS)
        downgraded = await _counts(database), await database.current_revision()
    finally:
        await database.dispose()

    assert upgraded == (dict.fromkeys(TABLES, 1), database.head_revision())
    assert downgraded == (dict.fromkeys(TABLES, 1), BEFORE_CLIENTS_REBUILDS)


async def test_upgrade_at_head_changes_nothing(fresh_db_url):
    """A second upgrade leaves revision and rows as they were (and, on SQLite, the file's bytes)."""
    database = await _at_0006_with_rows(fresh_db_url)
    try:
        await database.upgrade()
        before = await _counts(database), await database.current_revision(), _sqlite_bytes(fresh_db_url)
        await database.upgrade()
        after = await _counts(database), await database.current_revision(), _sqlite_bytes(fresh_db_url)
    finally:
        await database.dispose()

    assert after == before


def _sqlite_bytes(url: str) -> bytes | None:
    return Path(url.split(":///", 1)[1]).read_bytes() if url.startswith("sqlite") else None


async def test_an_upgrade_that_would_leave_a_dangling_reference_changes_nothing(tmp_path):
    """SQLite only (PostgreSQL never holds such a row): a secret of a client that is gone, stored
    with foreign keys off, makes `bastion db upgrade` exit 2 naming the table; the database stays
    at its revision, without the columns the migrations add, and keeps its rows."""
    path = tmp_path / "bastion.db"
    await (await _at_0006_with_rows(f"sqlite+aiosqlite:///{path}")).dispose()
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:  # foreign keys off: SQLite's default
        raw.execute("INSERT INTO client_secrets (client_id, secret_hash, created_at) VALUES ('gone', 'h', 1)")

    result = bastion("db", "upgrade", "--data-dir", str(tmp_path))

    with contextlib.closing(sqlite3.connect(path)) as raw:
        revision = raw.execute("SELECT version_num FROM alembic_version").fetchall()
        columns = {row[1] for row in raw.execute("PRAGMA table_info(clients)")}
        secrets = raw.execute("SELECT client_id FROM client_secrets ORDER BY client_id").fetchall()
    assert result.returncode == 2, result.stderr
    assert "would leave 1 rows whose foreign keys point nowhere (client_secrets -> clients)" in result.stderr
    assert "Traceback" not in result.stderr
    assert revision == [(BEFORE_CLIENTS_REBUILDS,)]
    assert not {"pkce_optional_with_nonce", "require_mfa"} & columns
    assert secrets == [("c1",), ("gone",)]
