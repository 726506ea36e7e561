"""API keys revoked by the real CLI (`bastion apikeys revoke`, each its own process) while a
running API verifies them from the database with `DatabaseApiKeyVerifier` (and writes their last
use on every verification) stay revoked, and the API refuses them once its cache time has passed:
no write of another process undoes a revocation. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bastion.guard.apikeys import new_key
from bastion.store import Database, api_keys
from bastion.store.api_keys import ApiKeyRow
from tests.cli._run import clean_env
from tests.guard._issuer import TestIssuer
from tests.guard._live_api import running_api

KEYS = 4
CACHE_SECONDS = 0.5


def revoking(db_url: str, data_dir: Path, key_id: str) -> subprocess.Popen[bytes]:
    """`bastion apikeys revoke KEY_ID`, on the database, started as its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "bastion", "apikeys", "revoke", key_id, "--data-dir", str(data_dir)],
        env=clean_env(BASTION_DATABASE_URL=db_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def hammer(url: str, key: str, stop: threading.Event, statuses: list[int]) -> None:
    """Verify `key` at the API as fast as one connection can until `stop`."""
    with httpx.Client(timeout=60) as http:
        while not stop.is_set():
            statuses.append(http.get(url + "/system/ping", headers={"X-API-Key": key}).status_code)


def wait_for(statuses: list[list[int]], counts: list[int]) -> None:
    while any(len(s) < count for s, count in zip(statuses, counts, strict=True)):
        time.sleep(0.01)


async def _create(db_url: str) -> list[tuple[str, str]]:
    database = Database(db_url, pool_size=1)
    created = []
    try:
        await database.upgrade()
        for i in range(KEYS):
            key, record = new_key(f"system-{i}", ["notes:read"], time.time())
            row = ApiKeyRow(record.key_id, record.owner, "notes:read", record.sha256, int(record.created_at))
            await api_keys.create(database, row)
            created.append((key, record.key_id))
        return created
    finally:
        await database.dispose()


async def _stored(db_url: str) -> dict[str, ApiKeyRow]:
    database = Database(db_url, pool_size=1)
    try:
        return {row.key_id: row for row in await api_keys.list_all(database)}
    finally:
        await database.dispose()


def test_cli_revocations_during_verifications_are_never_undone(
    live_issuer: TestIssuer, db_url: str, tmp_path: Path
) -> None:
    """Keys revoked by concurrent `bastion apikeys revoke` processes while the API verifies each over
    two connections (every verification writing last_used_at) are all revoked in the database and
    refused by the API after its cache time."""
    created = asyncio.run(_create(db_url))
    with running_api(
        "asgi", live_issuer, tmp_path, GUARD_APIKEYS_DB=db_url, GUARD_APIKEYS_CACHE=str(CACHE_SECONDS)
    ) as api:
        stop = threading.Event()
        statuses: list[list[int]] = [[] for _ in created]
        workers = [
            threading.Thread(target=hammer, args=(api.url, key, stop, seen))
            for (key, _), seen in zip(created, statuses, strict=True)
            for _connection in range(2)
        ]
        for worker in workers:
            worker.start()
        try:
            wait_for(statuses, [10] * KEYS)  # verifications, and their writes, are under way
            revocations = [revoking(db_url, tmp_path, key_id) for _, key_id in created]
            assert [process.wait(300) for process in revocations] == [0] * KEYS
            wait_for(statuses, [len(s) + 10 for s in statuses])  # and carry on after the revocations
        finally:
            stop.set()
            for worker in workers:
                worker.join(60)
        stored = asyncio.run(_stored(db_url))
        time.sleep(CACHE_SECONDS)  # every row the API cached before the revocations is stale now
        after = [
            httpx.get(api.url + "/system/ping", headers={"X-API-Key": key}, timeout=30).status_code
            for key, _ in created
        ]

    assert [s[0] for s in statuses] == [200] * KEYS
    assert [stored[key_id].revoked_at is not None for _, key_id in created] == [True] * KEYS
    assert all(stored[key_id].last_used_at is not None for _, key_id in created)
    assert after == [401] * KEYS
