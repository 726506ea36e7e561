"""API keys revoked by the real CLI while a running API verifies them (and writes their last use
to the same DATA_DIR/apikeys.json) stay revoked: no write of another process undoes a revocation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bastion.guard.apikeys import ApiKeyManager, JsonFileApiKeyStore
from tests.guard._issuer import TestIssuer
from tests.guard._live_api import running_api

KEYS = 4


def revoking(data_dir: Path, key_id: str) -> subprocess.Popen[bytes]:
    """`bastion apikeys revoke KEY_ID --data-dir DATA_DIR`, started as its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    return subprocess.Popen(
        [sys.executable, "-m", "bastion", "apikeys", "revoke", key_id, "--data-dir", str(data_dir)],
        env=env,
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


def test_cli_revocations_during_verifications_are_never_undone(live_issuer: TestIssuer, tmp_path: Path) -> None:
    """Keys revoked by concurrent `bastion apikeys revoke` processes while the API verifies each over
    two connections (every verification writing last_used_at) are all revoked in the file and refused."""
    manager = ApiKeyManager(JsonFileApiKeyStore(tmp_path / "apikeys.json"))
    created = [manager.create(f"system-{i}", ["notes:read"]) for i in range(KEYS)]
    with running_api("asgi", live_issuer, tmp_path) as api:
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
            revocations = [revoking(tmp_path, record.key_id) for _, record in created]
            assert [process.wait(300) for process in revocations] == [0] * KEYS
            wait_for(statuses, [len(s) + 10 for s in statuses])  # and carry on after the revocations
        finally:
            stop.set()
            for worker in workers:
                worker.join(60)
        stored = {r["key_id"]: r for r in json.loads(api.apikeys.read_text())["keys"]}
        after = [
            httpx.get(api.url + "/system/ping", headers={"X-API-Key": key}, timeout=30).status_code
            for key, _ in created
        ]

    assert [s[0] for s in statuses] == [200] * KEYS
    assert [stored[record.key_id]["revoked_at"] is not None for _, record in created] == [True] * KEYS
    assert all(stored[record.key_id]["last_used_at"] is not None for _, record in created)
    assert after == [401] * KEYS
