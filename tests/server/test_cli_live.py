"""The CLI changes clients while two `bastion serve` processes run on the same data.

A new client works at once everywhere (unknown clients are never cached); a disabled client or a
replaced secret stops working everywhere within client_cache_seconds (1 s here); a secret rotated
with an overlap keeps working until the overlap ends, and then stops.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._live import LiveServer, start_server
from tests.conftest import make_settings, prepare

pytestmark = pytest.mark.server

CLIENT_CACHE_SECONDS = 1
# Seconds the old secret stays valid after `rotate-secret --overlap`: long enough to observe it
# still working after both processes have reloaded the client. Measured on a machine loaded to 5x
# its cores: the CLI returned up to 4 s after recording the rotation, then each process reloaded
# within 0.4-0.7 s; 8 s leaves room for that and the one-second margin asserted below.
OVERLAP = 8
INVALID_CLIENT = {"error": "invalid_client", "error_description": "client authentication failed"}


@pytest.fixture
def pair(db_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on this test's database, each caching clients for one second."""
    settings = make_settings(db_url, tmp_path, client_cache_seconds=CLIENT_CACHE_SECONDS)
    asyncio.run(prepare(settings))
    servers: list[LiveServer] = []
    try:
        for _ in range(2):
            servers.append(start_server(settings, tmp_path))
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def token_response(server: LiveServer, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        server.url + "/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client_id, secret),
        timeout=10,
    )


def works(server: LiveServer, client_id: str, secret: str) -> bool:
    """True on 200; False on exactly the generic 401 invalid_client; anything else fails the test."""
    response = token_response(server, client_id, secret)
    if response.status_code == 200:
        return True
    assert (response.status_code, response.json()) == (401, INVALID_CLIENT)
    return False


def wait_until(what: str, condition: Callable[[], bool], timeout: float) -> None:
    """Poll `condition` every 100 ms until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


def cli_json(server: LiveServer, *args: str) -> dict[str, Any]:
    result = server.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def create_client(server: LiveServer) -> tuple[str, str]:
    client = server.create_client("--name", "cli live", "--grant", "client_credentials", "--scope", "read")
    return client["client_id"], client["client_secret"]


def test_created_client_works_at_once_on_both_processes(pair):
    """A client made by `bastion clients create` gets tokens from both running processes at once."""
    a, b = pair
    client_id, secret = create_client(a)

    assert works(a, client_id, secret)
    assert works(b, client_id, secret)


def test_disabled_client_stops_on_both_processes(pair):
    """After `bastion clients disable`, both processes refuse the client within a few seconds."""
    a, b = pair
    client_id, secret = create_client(a)
    assert works(a, client_id, secret)
    assert works(b, client_id, secret)

    assert cli_json(b, "clients", "disable", client_id)["enabled"] is False

    for server in (a, b):
        wait_until(f"{server.url} refuses the disabled client", lambda s=server: not works(s, client_id, secret), 5)


def test_rotated_secret_replaces_old_on_both_processes(pair):
    """After `rotate-secret --overlap 0`, both processes accept only the new secret within a few seconds."""
    a, b = pair
    client_id, old = create_client(a)
    assert works(a, client_id, old)
    assert works(b, client_id, old)

    new = cli_json(a, "clients", "rotate-secret", client_id, "--overlap", "0")["client_secret"]

    for server in (a, b):
        wait_until(f"{server.url} accepts only the new secret", lambda s=server: works(s, client_id, new), 5)
        assert not works(server, client_id, old)


def test_overlap_keeps_old_secret_until_it_ends(pair):
    """With --overlap, the old secret works on both processes until the overlap ends, then stops."""
    a, b = pair
    client_id, old = create_client(a)
    assert works(a, client_id, old)
    assert works(b, client_id, old)

    rotated = cli_json(a, "clients", "rotate-secret", client_id, "--overlap", str(OVERLAP))
    new, valid_until = rotated["client_secret"], rotated["previous_secret_valid_until"]

    # Once a process accepts the new secret it has reloaded the client; the old one still works.
    for server in (a, b):
        wait_until(f"{server.url} accepts the new secret", lambda s=server: works(s, client_id, new), 5)
    # A second of margin: the two requests below must both land inside the overlap.
    assert time.time() < valid_until - 1, "the machine was too slow to observe the overlap"
    assert works(a, client_id, old)
    assert works(b, client_id, old)

    for server in (a, b):
        wait_until(f"{server.url} refuses the old secret", lambda s=server: not works(s, client_id, old), OVERLAP + 5)
        # It stops when the overlap ends, not before (the server compares whole seconds).
        assert time.time() >= valid_until
        assert works(server, client_id, new)
