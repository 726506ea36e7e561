"""Upgrades keep every row: a database holding data at an older revision is migrated to head
with nothing lost, on a fresh SQLite file and a fresh PostgreSQL database.

On SQLite a migration that rebuilds a table (Alembic's batch mode copies it, drops the old one
and renames the copy) once ran with foreign keys on, so the drop's implicit delete cascaded and
emptied every table referencing `clients`: secrets, consents, device codes.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text

from bastion.config import Settings
from bastion.identity import totp, users
from bastion.identity.passwords import PasswordHasher
from bastion.keys import startup
from bastion.protocol.oidc import ACR_PASSWORD
from bastion.server.clients import SecretHasher, generate_client_secret
from bastion.server.issuance import token_hash
from bastion.store import Database, clients, consents, device_codes, revocations, sessions
from bastion.store.models import metadata
from tests._live import start_server
from tests.cli._run import bastion
from tests.conftest import ISSUER, TEST_KEK, TEST_PEPPER, make_settings
from tests.server._device import DEVICE_GRANT, poll
from tests.server._people import CALLBACK, PASSWORD, Person
from tests.store import _rows
from tests.store._served import SPA_SCOPE, client_credentials, header, jwks, refreshed, sign_in

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


# The previous release's schema. CHANGELOG.md names no release yet (one "Unreleased" section), so
# this is the revision before the newest migration: 0010 adds `clients.require_mfa`, rebuilding
# `clients` on SQLite. The migrations of today build it (`Database.downgrade` from head).
PREVIOUS_RELEASE = "0009"
_CLIENT_AT_0009 = text(
    "INSERT INTO clients (client_id, name, client_type, auth_method, grant_types, scopes, audiences,"
    " redirect_uris, token_lifetime, introspect, enabled, jwks, jwks_uri, token_endpoint_audience, created_at,"
    " updated_at, post_logout_redirect_uris, id_token_signed_response_alg, pkce_optional_with_nonce) VALUES"
    " (:client_id, :name, :client_type, :auth_method, :grant_types, :scopes, '', :redirect_uris, NULL, :false,"
    " :true, NULL, NULL, :false, :now, :now, '', 'RS256', :false)"
)

# 0012 adds `users.require_mfa`: the previous release's user is inserted by SQL of its schema too.
_USER_AT_0009 = text(
    "INSERT INTO users (sub, username, email, email_verified, display_name, profile, roles, enabled,"
    " password_hash, totp_secret, totp_last_step, created_at, updated_at) VALUES"
    " (:sub, 'carol', 'carol@example.com', :true, 'Carol', '{}', '', :true, :password_hash, NULL, NULL, :now, :now)"
)


@dataclass
class Carried:
    """What the previous release's users hold: the secrets the upgraded server must honour."""

    service: str
    service_secret: str
    spa: dict[str, Any]
    person: Person
    totp_secret: str
    recovery_codes: list[str]
    refresh_token: str
    device_code: str


async def _previous_release_data(database: Database, settings: Settings) -> Carried:
    """A row in every table, at PREVIOUS_RELEASE: the clients and the user by SQL of that schema,
    everything else through today's store and identity functions (those tables are unchanged since)."""
    now, secret = int(time.time()), generate_client_secret()
    async with database.engine.begin() as conn:
        common = {"now": now, "true": True, "false": False}
        password_hash = await PasswordHasher("testing").hash(PASSWORD)
        await conn.execute(_USER_AT_0009, {"sub": "sub-carol-upgrade", "password_hash": password_hash, **common})
        await conn.execute(
            _CLIENT_AT_0009,
            {"client_id": "svc-upgrade", "name": "Service", "client_type": "confidential",
             "auth_method": "client_secret_basic", "grant_types": "client_credentials", "scopes": "read",
             "redirect_uris": "", **common},
        )  # fmt: skip
        await conn.execute(
            _CLIENT_AT_0009,
            {"client_id": "spa-upgrade", "name": "SPA", "client_type": "public", "auth_method": "none",
             "grant_types": f"authorization_code refresh_token {DEVICE_GRANT}", "scopes": SPA_SCOPE,
             "redirect_uris": CALLBACK, **common},
        )  # fmt: skip
    pepper = startup.client_secret_pepper(settings)
    await clients.add_secret(database, "svc-upgrade", SecretHasher(pepper).hash(secret), now)

    carol = "sub-carol-upgrade"
    totp_secret = totp.generate_secret()
    recovery_codes = await users.enrol_totp(database, startup.key_encryptor(settings), carol, totp_secret, 1)
    await consents.merge(database, carol, "spa-upgrade", tuple(SPA_SCOPE.split()), now)

    refresh_token, device_code = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    signed_in = {"sub": carol, "sid": "sid-upgrade", "auth_time": now, "amr": "pwd"}
    await sessions.save(database, _rows.browser_session("session-upgrade", **signed_in, expires_at=now + 600))
    signed_in["acr"] = ACR_PASSWORD
    await _rows.store(
        database,
        _rows.pending_request("request-upgrade", "session-upgrade", client_id="spa-upgrade", expires_at=now + 600),
        _rows.code("code-upgrade", client_id="spa-upgrade", sub=carol, expires_at=now + 60),
        _rows.refresh_token(
            token_hash(refresh_token), family="family-upgrade", client_id="spa-upgrade", scope=SPA_SCOPE,
            **signed_in, created_at=now, expires_at=now + 3600,
            family_expires_at=now + 86400,
        ),
    )  # fmt: skip
    approved = _rows.device_code(
        token_hash(device_code), "BCDFGHJK", client_id="spa-upgrade", scope="openid offline_access",
        status=device_codes.APPROVED, **signed_in, created_at=now, expires_at=now + 600, decided_at=now,
    )  # fmt: skip
    assert await device_codes.start(database, approved, purge_before=0)
    await revocations.record(database, "jti-upgrade", "svc-upgrade", now + 600, now)
    assert await revocations.use_assertion(database, "svc-upgrade", "assertion-upgrade", now + 600, now)
    return Carried(
        "svc-upgrade", secret, {"client_id": "spa-upgrade"}, Person(carol, "carol", PASSWORD),
        totp_secret, recovery_codes, refresh_token, device_code,
    )  # fmt: skip


async def _all_counts(database: Database) -> dict[str, int]:
    """Rows per table of the models that the database has at its revision (a table added since the
    previous release is not there before the upgrade)."""
    async with database.engine.connect() as conn:
        present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        return {
            t.name: (await conn.execute(text(f"SELECT count(*) FROM {t.name}"))).scalar_one()  # noqa: S608 - model names
            for t in metadata.sorted_tables
            if t.name in present
        }


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        "BASTION_ISSUER": ISSUER,
        "BASTION_DATABASE_URL": settings.resolved_database_url,
        "BASTION_KEY_ENCRYPTION_KEY": TEST_KEK,
        "BASTION_CLIENT_SECRET_PEPPER": TEST_PEPPER,
        "BASTION_KEY_PREPUBLICATION": "0",
    }


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    result = bastion(*args, "--data-dir", str(settings.data_dir), **_cli_env(settings))
    assert result.returncode == 0, result.stderr
    return result


async def test_previous_schema_with_data_upgrades_and_is_served(fresh_db_url, tmp_path):
    """A database of the previous release's schema with a row in every table, upgraded by
    `bastion db upgrade`, keeps every row, and `bastion serve` on it honours what people hold:
    the signing keys made by `bastion keys rotate` (published, still signing), the client's secret,
    the refresh token (rotated), the approved device code, and the person's password with TOTP or
    a recovery code (consent remembered)."""
    settings = make_settings(fresh_db_url, tmp_path)
    database = Database(settings.resolved_database_url, pool_size=1)
    try:
        await database.upgrade()
        # The keys an operator made with the CLI; the schema then taken back to the previous release.
        es256 = json.loads(_cli(settings, "keys", "rotate", "--alg", "ES256", "--json").stdout)["kid"]
        rs256 = json.loads(_cli(settings, "keys", "rotate", "--alg", "RS256", "--json").stdout)["kid"]
        await database.downgrade(PREVIOUS_RELEASE)
        assert await database.current_revision() == PREVIOUS_RELEASE
        carried = await _previous_release_data(database, settings)
        before = await _all_counts(database)

        upgraded = _cli(settings, "db", "upgrade")
        after = await _all_counts(database)
    finally:
        await database.dispose()
    assert f"database at revision {database.head_revision()}" in upgraded.stderr
    assert after == {**before, **dict.fromkeys(after.keys() - before.keys(), 0)}  # new tables start empty
    assert set(after) == set(metadata.tables)
    assert min(before.values()) >= 1

    server = start_server(settings, tmp_path)
    try:
        keys = await jwks(server)
        service = await client_credentials(server, carried.service, carried.service_secret)
        rotated = await refreshed(server, carried.spa, carried.refresh_token)
        async with httpx.AsyncClient(base_url=server.url) as http:
            device = await poll(http, carried.spa, carried.device_code)
        totp_code = totp.current_code(carried.totp_secret)
        with_totp = await sign_in(server, carried.spa, carried.person, second_factor=totp_code)
        with_recovery_code = await sign_in(server, carried.spa, carried.person, second_factor=carried.recovery_codes[0])
    finally:
        server.stop()

    assert {key["kid"] for key in keys["keys"]} == {es256, rs256}
    assert header(service["access_token"])["kid"] == es256
    assert rotated["refresh_token"] != carried.refresh_token
    assert header(rotated["access_token"])["kid"] == es256
    assert device.status_code == 200, device.text
    assert header(device.json()["id_token"])["kid"] == rs256
    for tokens in (with_totp, with_recovery_code):
        assert (header(tokens["id_token"])["kid"], header(tokens["access_token"])["kid"]) == (rs256, es256)
