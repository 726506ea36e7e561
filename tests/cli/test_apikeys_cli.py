"""`bastion apikeys` (real processes) on the database, SQLite and PostgreSQL: create prints the key
once and stores only its hash; list, rotate and revoke act on the database, with the common
options (`--data-dir`, `--config`); wrong arguments exit 2; the API key file of the previous
release is imported once (said on stderr) and renamed; processes creating keys at the same time
lose none."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bastion.guard.apikeys import ApiKeyManager, DatabaseApiKeyVerifier, JsonFileApiKeyStore, key_digest
from bastion.protocol.errors import InvalidApiKey
from bastion.store import Database, api_keys
from tests.cli._run import bastion, clean_env

pytestmark = pytest.mark.anyio

KEY = re.compile(r"bsk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}")


def _cli(db_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return bastion("apikeys", *args, "--data-dir", str(data_dir), BASTION_DATABASE_URL=db_url)


def _ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def _stored(db_url: str) -> dict[str, api_keys.ApiKeyRow]:
    database = Database(db_url, pool_size=1)
    try:
        return {row.key_id: row for row in await api_keys.list_all(database)}
    finally:
        await database.dispose()


async def test_create_list_rotate_revoke_on_the_database(db_url, tmp_path):
    """create --json prints the key (stored as its SHA-256 only); list never shows a key or hash;
    rotate gives a successor that replaces it; revoke stops the successor; all in the database."""
    created = _ok(_cli(db_url, tmp_path, "create", "--owner", "billing", "--scope", "notes:read notes:stats", "--json"))
    rotated = _ok(_cli(db_url, tmp_path, "rotate", created["key_id"], "--overlap", "60", "--json"))
    revoked = _cli(db_url, tmp_path, "revoke", rotated["key_id"])
    listing = _cli(db_url, tmp_path, "list", "--json")
    human = _cli(db_url, tmp_path, "list")
    stored = await _stored(db_url)

    assert KEY.fullmatch(created["api_key"])
    assert (created["owner"], created["scopes"]) == ("billing", ["notes:read", "notes:stats"])
    assert stored[created["key_id"]].sha256 == key_digest(created["api_key"])
    assert stored[created["key_id"]].replaced_by == rotated["key_id"]
    assert stored[created["key_id"]].expires_at == stored[rotated["key_id"]].created_at + 60
    assert stored[rotated["key_id"]].sha256 == key_digest(rotated["api_key"])
    assert (revoked.returncode, revoked.stdout) == (0, f"revoked {rotated['key_id']}\n")
    assert stored[rotated["key_id"]].revoked_at is not None
    assert [k["key_id"] for k in json.loads(listing.stdout)["keys"]] == [created["key_id"], rotated["key_id"]]
    for secret in (created["api_key"], rotated["api_key"], stored[created["key_id"]].sha256):
        assert secret not in listing.stdout + listing.stderr + human.stdout + human.stderr
    assert f"{created['key_id']}  billing  scopes: notes:read notes:stats  expires 20" in human.stdout
    assert "revoked  last used -" in human.stdout


def test_create_prints_the_key_alone_on_stdout(db_url, tmp_path):
    """Without --json stdout is the key alone (for `KEY=$(bastion apikeys create ...)`); its id goes to stderr."""
    result = _cli(db_url, tmp_path, "create", "--owner", "billing")

    assert result.returncode == 0, result.stderr
    assert KEY.fullmatch(result.stdout.strip())
    assert "shown once, store it now" in result.stderr


async def test_config_option_names_the_database(db_url, tmp_path):
    """`--config FILE` whose database_url names the database: the key is stored there."""
    config = tmp_path / "bastion.toml"
    config.write_text(f'database_url = "{db_url}"\n')

    result = bastion(
        "apikeys", "create", "--owner", "cfg", "--json", "--config", str(config), "--data-dir", str(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key_id"] in await _stored(db_url)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["revoke", "nope"], "no API key 'nope'", id="revoke-unknown"),
        pytest.param(["rotate", "nope"], "no active API key 'nope'", id="rotate-unknown"),
        pytest.param(["rotate", "x", "--overlap", "-1"], "--overlap must be 0-2592000 seconds", id="overlap-negative"),
        pytest.param(
            ["create", "--owner", "b", "--expires-in", "0"], "--expires-in must be a positive", id="expires-0"
        ),
        pytest.param(["create", "--owner", " "], "--owner must be 1-200 characters", id="owner-blank"),
    ],
)
def test_wrong_arguments_exit_2_with_the_reason(db_url, tmp_path, args, message):
    """A wrong key id or value exits 2 with a message naming it, and no traceback."""
    result = _cli(db_url, tmp_path, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_revoked_key_cannot_be_rotated(db_url, tmp_path):
    """rotate of a revoked key exits 2 and stores no successor."""
    created = _ok(_cli(db_url, tmp_path, "create", "--owner", "billing", "--json"))
    assert _cli(db_url, tmp_path, "revoke", created["key_id"]).returncode == 0

    result = _cli(db_url, tmp_path, "rotate", created["key_id"])

    assert result.returncode == 2
    assert "unknown, revoked, expired or already rotated" in result.stderr
    assert list(await _stored(db_url)) == [created["key_id"]]


async def test_the_previous_releases_file_is_imported_once(db_url, tmp_path):
    """Keys of DATA_DIR/apikeys.json are imported by the first command (said on stderr), with their
    hashes and revocations; the file is renamed and never imported again; the keys verify."""
    manager = ApiKeyManager(JsonFileApiKeyStore(tmp_path / "apikeys.json"))
    kept, kept_record = manager.create("billing", ["notes:read"])
    stopped, stopped_record = manager.create("reports")
    manager.revoke(stopped_record.key_id)

    first = _cli(db_url, tmp_path, "list", "--json")
    second = _cli(db_url, tmp_path, "list", "--json")
    verifier = DatabaseApiKeyVerifier(db_url)
    try:
        principal = await verifier.verify(kept)
        with pytest.raises(InvalidApiKey):
            await verifier.verify(stopped)
    finally:
        await verifier.close()

    assert first.returncode == 0, first.stderr
    assert f"imported 2 API key(s) from {tmp_path / 'apikeys.json'} into the database" in first.stderr
    assert {k["key_id"] for k in json.loads(first.stdout)["keys"]} == {kept_record.key_id, stopped_record.key_id}
    assert not (tmp_path / "apikeys.json").exists()
    assert (tmp_path / "apikeys.json.imported").exists()
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout == first.stdout
    assert principal.api_key_id == kept_record.key_id


def test_an_unreadable_previous_file_exits_2(db_url, tmp_path):
    """A DATA_DIR/apikeys.json that is not a key file is refused (exit 2) and left in place."""
    (tmp_path / "apikeys.json").write_text("{not json")

    result = _cli(db_url, tmp_path, "list")

    assert result.returncode == 2
    assert "is not an API key file of a previous release" in result.stderr
    assert (tmp_path / "apikeys.json").exists()


def test_processes_creating_keys_at_once_lose_none(db_url, tmp_path):
    """Four `bastion apikeys create` processes started together: four keys stored, each verifying."""
    env = clean_env(BASTION_DATABASE_URL=db_url)
    _ok(_cli(db_url, tmp_path, "list", "--json"))  # SQLite: the file and its schema exist first
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bastion", "apikeys", "create", "--owner", f"system-{i}", "--json",
             "--data-dir", str(tmp_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(4)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=120) for process in processes]

    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in outputs]
    created = [json.loads(out) for out, _ in outputs]
    stored = asyncio.run(_stored(db_url))
    assert sorted(stored) == sorted(c["key_id"] for c in created)
    assert all(stored[c["key_id"]].sha256 == key_digest(c["api_key"]) for c in created)
