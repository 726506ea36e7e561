"""Backup and restore with PostgreSQL's own tools, as docs/operations.md ("Backup and restore")
tells an operator: `pg_dump --format=custom` of a serving production database, `createdb` and
`pg_restore` into a fresh one, and a server on the restored database serves the same clients,
users, signing keys and refresh tokens (given the same key-encryption key and pepper)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.config import Settings
from tests import _services
from tests._live import start_server
from tests.conftest import TEST_KEK, TEST_PEPPER, make_settings
from tests.server._people import PASSWORD, Person
from tests.store._served import SPA_ARGS, client_credentials, header, jwks, refreshed, sign_in

pytestmark = pytest.mark.server


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    """Two new, uniquely named databases on the shared PostgreSQL (plain libpq URLs, as an
    operator writes them), dropped afterwards."""
    base = _services.need_postgres()
    names = [f"bastion_backup_{secrets.token_hex(4)}", f"bastion_restored_{secrets.token_hex(4)}"]
    server = base.rsplit("/", 1)[0]
    try:
        for name in names:
            _run("createdb", "--maintenance-db", base, name)
        yield f"{server}/{names[0]}", f"{server}/{names[1]}"
    finally:
        for name in names:
            subprocess.run(["dropdb", "--if-exists", "--force", "--maintenance-db", base, name], check=False)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result


def _bastion(settings: Settings, *args: str, stdin: str | None = None) -> Any:
    """`bastion ARGS` in-process (the CLI's own code, no interpreter start-up), production mode:
    PostgreSQL, the secrets given; cheap Argon2id for `users create` (`serve` refuses it, and
    rehashes at the first sign-in)."""
    env = {
        "BASTION_DATABASE_URL": settings.resolved_database_url,
        "BASTION_KEY_ENCRYPTION_KEY": TEST_KEK,
        "BASTION_CLIENT_SECRET_PEPPER": TEST_PEPPER,
        "BASTION_KEY_PREPUBLICATION": "0",
        "BASTION_PASSWORD_HASHING": "testing",
    }
    result = CliRunner().invoke(app, [*args, "--data-dir", str(settings.data_dir)], input=stdin, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout) if "--json" in args else None


def test_pg_dump_and_pg_restore_keep_clients_users_keys_and_refresh_tokens(two_databases, tmp_path):
    """A production server's database, dumped while it serves and restored into a fresh database,
    serves the same: the JWKS, the client's secret, the refresh token (it rotates), the person's
    password and consent."""
    url, restored_url = two_databases
    settings = make_settings(url, tmp_path)
    _bastion(settings, "db", "upgrade")
    kids = {_bastion(settings, "keys", "rotate", "--alg", alg, "--json")["kid"] for alg in ("ES256", "RS256")}
    service = _bastion(settings, "clients", "create", "--name", "svc", "--grant", "client_credentials", "--json")
    spa = _bastion(settings, "clients", "create", *SPA_ARGS, "--json")
    user = _bastion(settings, "users", "create", "--username", "dana", "--password-stdin", "--json", stdin=PASSWORD)
    dana = Person(user["sub"], "dana", PASSWORD)
    dump = tmp_path / "bastion.dump"

    original = start_server(settings, tmp_path)
    try:
        before = asyncio.run(jwks(original))
        issued = asyncio.run(sign_in(original, spa, dana, consent="approve"))
        # The operator's commands (docs/operations.md): an online, consistent dump; a fresh
        # database; the restore.
        _run("pg_dump", "--format=custom", f"--file={dump}", url)
    finally:
        original.stop()
    _run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored_url}", str(dump))

    restored = start_server(make_settings(restored_url, tmp_path), tmp_path)
    try:
        after = asyncio.run(jwks(restored))
        token = asyncio.run(client_credentials(restored, service["client_id"], service["client_secret"]))
        rotated = asyncio.run(refreshed(restored, spa, issued["refresh_token"]))
        again = asyncio.run(sign_in(restored, spa, dana))
    finally:
        restored.stop()

    assert {key["kid"] for key in before["keys"]} == kids
    assert after == before
    assert header(token["access_token"])["kid"] in kids
    assert rotated["refresh_token"] != issued["refresh_token"]
    assert header(rotated["access_token"])["kid"] in kids
    assert header(again["id_token"])["kid"] in kids


def test_a_restored_database_without_its_key_encryption_key_is_refused_at_start(two_databases, tmp_path):
    """Restored with another key-encryption key, `bastion serve` exits 2 naming the setting and
    the fix, instead of serving `server_error` at the first token."""
    url, restored_url = two_databases
    settings = make_settings(url, tmp_path)
    _bastion(settings, "db", "upgrade")
    _bastion(settings, "keys", "rotate", "--alg", "ES256", "--json")
    _bastion(settings, "keys", "rotate", "--alg", "RS256", "--json")
    dump = tmp_path / "bastion.dump"
    _run("pg_dump", "--format=custom", f"--file={dump}", url)
    _run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored_url}", str(dump))
    other = base64.urlsafe_b64encode(b"o" * 32).decode()

    with pytest.raises(RuntimeError) as refused:
        start_server(make_settings(restored_url, tmp_path, key_encryption_key=other), tmp_path)

    assert "bastion serve exited 2" in str(refused.value)
    assert "error: key_encryption_key: cannot decrypt 2 signing key(s)" in str(refused.value)
    assert "Fix: set BASTION_KEY_ENCRYPTION_KEY to the key they were made with" in str(refused.value)

