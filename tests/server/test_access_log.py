"""The access log through a real `bastion serve` on SQLite and PostgreSQL: off by default; when
configured, one JSON line per request with the route template and the client, never a query
string or a header, and apart from the audit trail (which stays on stderr)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._live import LiveServer, start_server
from tests.conftest import make_settings, prepare

pytestmark = [pytest.mark.server]

QUERY_SECRET = "q-" + "7" * 20


@pytest.fixture
def logged(db_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    """A server writing its access log to a file."""
    settings = make_settings(db_url, tmp_path)
    asyncio.run(prepare(settings))
    path = tmp_path / "access.log"
    server = start_server(settings, tmp_path, BASTION_ACCESS_LOG=str(path))
    try:
        yield server, path
    finally:
        server.stop()


def _traffic(server: LiveServer, client: dict[str, Any]) -> httpx.Response:
    """A grant (credentials in the Authorization header), an authorization request with a query,
    and a JWKS read; the grant's answer."""
    token = httpx.post(
        server.url + "/token", data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]), timeout=10,
    )  # fmt: skip
    httpx.get(server.url + "/authorize", params={"client_id": "nobody", "state": QUERY_SECRET}, timeout=10)
    httpx.get(server.url + "/jwks", timeout=10)
    return token


def _lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The log's first `count` lines, parsed (each is written once its response has been sent)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if text.count("\n") >= count:
            return [json.loads(line) for line in text.splitlines()]
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} lines in {path}")


def test_each_request_is_one_json_line_without_query_or_headers(logged):
    """Three requests, three JSON lines: time, request id, method, route, path without its query,
    status, duration and client address, with the client_id once authenticated; neither the
    query's values nor the Authorization header appear anywhere in the file."""
    server, path = logged
    client = server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    before = len(_lines(path, 1))  # the start-up probes of /health
    token = _traffic(server, client)
    lines = _lines(path, before + 3)[before:]
    text = path.read_text(encoding="utf-8")

    assert token.status_code == 200
    assert [(line["method"], line["route"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/token", "/token", 200),
        ("GET", "/authorize", "/authorize", 400),
        ("GET", "/jwks", "/jwks", 200),
    ]
    assert lines[0]["client_id"] == client["client_id"]
    assert all("client_id" not in line for line in lines[1:])
    for line in lines:
        assert set(line) - {"client_id", "sub"} == {
            "time", "request_id", "method", "route", "path", "status", "duration_ms", "client"
        }
        assert line["client"] == "127.0.0.1"
        assert line["duration_ms"] >= 0
        assert len(line["request_id"]) == 16
    assert lines[0]["request_id"] == token.headers["x-request-id"]
    assert QUERY_SECRET not in text
    assert client["client_secret"] not in text
    assert token.request.headers["authorization"].split()[1] not in text
    assert "audit" not in text
    assert "client_authenticated" in server.log.read_text(encoding="utf-8")  # the audit trail, on stderr


def test_the_access_log_is_off_by_default(live_server):
    """Without `access_log` the server writes no access line anywhere."""
    client = live_server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    _traffic(live_server, client)
    time.sleep(0.5)
    lines = live_server.log.read_text(encoding="utf-8").splitlines()

    assert not any('"duration_ms"' in line for line in lines)
    assert any("client_authenticated" in line for line in lines)


def test_a_long_path_is_cut_at_2048_characters(logged):
    """A request for a path of 10,000 characters is logged with its first 2048 and a mark."""
    server, path = logged
    long_path = "/" + "a" * 9999
    answer = httpx.get(server.url + long_path, timeout=10)
    time.sleep(0.3)
    [line] = [line for line in _lines(path, 1) if line["path"].startswith("/aaa")]

    assert answer.status_code == 404
    assert line["path"] == long_path[:2048]
    assert line["path_truncated"] is True


def test_a_log_that_cannot_be_written_loses_the_line_not_the_request(db_url: str, tmp_path: Path):
    """An access log on a full device (/dev/full: every write fails with ENOSPC): requests are
    still answered, and the server warns once that lines are being lost."""
    settings = make_settings(db_url, tmp_path)
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_ACCESS_LOG="/dev/full")
    try:
        answers = [httpx.get(server.url + "/jwks", timeout=10).status_code for _ in range(5)]
        time.sleep(0.5)
    finally:
        server.stop()
    output = server.log.read_text(encoding="utf-8")

    assert answers == [200] * 5
    assert output.count("access_log_write_failed") == 1
    assert "No space left on device" in output
    assert "Traceback" not in output
