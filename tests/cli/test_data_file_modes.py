"""Every file Bastion writes in its data directory is readable by its owner only, through the
real CLI and a real `bastion serve` in development mode (SQLite in the data directory)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.config import load_settings
from tests._live import LiveServer, free_port, start_server
from tests.cli._run import clean_env

pytestmark = pytest.mark.server


@pytest.fixture
def development_server(tmp_path: Path) -> Iterator[LiveServer]:
    """`bastion serve` on a fresh data directory: it creates the database and its own secrets."""
    port = free_port()
    settings = load_settings(
        environ={}, overrides={"data_dir": tmp_path / f"serve-{port}", "issuer": f"http://127.0.0.1:{port}"}
    )
    server = start_server(settings, tmp_path, port=port, BASTION_DATABASE_URL="", BASTION_KEY_ENCRYPTION_KEY="",
                          BASTION_CLIENT_SECRET_PEPPER="")
    server.env = clean_env(**{k: v for k, v in server.env.items() if k.startswith("BASTION_") and v})
    try:
        yield server
    finally:
        server.stop()


def _modes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in sorted(root.rglob("*"))}


def test_data_directory_files_are_private(development_server: LiveServer) -> None:
    """The database with its -wal/-shm (and API keys), generated secrets and the issuer are 0600, folders 0700."""
    server = development_server
    client = server.create_client("--name", "svc", "--grant", "client_credentials", "--scope", "read")
    token = httpx.post(server.url + "/token", data={"grant_type": "client_credentials", "scope": "read"},
                       auth=(client["client_id"], client["client_secret"]), timeout=30)
    apikey = server.cli("apikeys", "create", "--owner", "billing", "--json")

    modes = _modes(server.data_dir)

    assert token.status_code == 200, token.text
    assert apikey.returncode == 0, apikey.stderr
    assert {"bastion.db", "bastion.db-wal", "bastion.db-shm", "secrets"} <= set(modes), modes
    assert any(name.startswith("secrets/") for name in modes), modes
    expected = {name: oct(0o700 if (server.data_dir / name).is_dir() else 0o600) for name in modes}
    assert modes == expected
    assert oct(stat.S_IMODE(server.data_dir.stat().st_mode)) == oct(0o700)
