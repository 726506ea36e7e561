"""One request id per response, shared by the server's audit lines and the guard's audit entries.

Real `bastion serve` processes; the id is the guard's RequestIdMiddleware, which the server uses
and which believes an incoming X-Request-ID only from a trusted proxy (`--behind-proxy`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests._live import LiveServer, start_server
from tests.conftest import prepare

MADE_HERE = re.compile(r"[0-9a-f]{16}")
# An unknown client at the token endpoint: answered 401 and audited by the server.
UNKNOWN_CLIENT = {"data": {"grant_type": "client_credentials"}, "auth": ("nobody-registered", "x")}

Serve = Callable[..., LiveServer]


@pytest.fixture
def serve(settings, tmp_path) -> Iterator[Serve]:
    """Starts real servers on this test's database (`serve(*flags, **env)`), all stopped at the end."""
    asyncio.run(prepare(settings))
    servers: list[LiveServer] = []

    def start(*args: str, **env: str) -> LiveServer:
        servers.append(start_server(settings, tmp_path, args=args, **env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def audit_lines(server: LiveServer, request_id: str) -> list[dict[str, Any]]:
    """The server's audit lines (JSON on stderr) written for the request with this id."""
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("audit") and line.get("request_id") == request_id]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_response_has_one_id_equal_to_the_server_and_guard_audit(serve):
    """Under /demo a response has one X-Request-ID, the id of the server's line and of the guard's entry in it."""
    server = serve(BASTION_DEMO="1")
    alice = server.cli("demo", "token", "--user", "alice")
    assert alice.returncode == 0, alice.stderr

    refused = httpx.get(f"{server.url}/demo/notes", headers={"authorization": "Bearer not-a-jwt"}, timeout=30)
    created = httpx.post(
        f"{server.url}/demo/notes",
        headers={"authorization": f"Bearer {alice.stdout.strip()}"},
        json={"title": "t", "body": "b"},
        timeout=30,
    )

    assert (refused.status_code, created.status_code) == (401, 201)
    for response, action in ((refused, "request.refused"), (created, "note.create")):
        assert len(response.headers.get_list("x-request-id")) == 1
        request_id = response.headers["x-request-id"]
        assert MADE_HERE.fullmatch(request_id)
        lines = audit_lines(server, request_id)
        assert [(line["event"], line["entry"]["action"], line["entry"]["request_id"]) for line in lines] == [
            ("guard_audit", action, request_id)
        ]
        assert lines[0]["source"] == "127.0.0.1"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("flags", "env"),
    [
        pytest.param((), {}, id="not-behind-a-proxy"),
        pytest.param(("--behind-proxy",), {"BASTION_TRUSTED_PROXIES": "10.0.0.1"}, id="peer-not-a-trusted-proxy"),
    ],
)
def test_incoming_id_from_untrusted_peer_is_ignored(serve, flags, env):
    """A caller that is not a trusted proxy cannot choose the id its request is logged under."""
    server = serve(*flags, **env)

    response = httpx.post(
        f"{server.url}/token", headers={"x-request-id": "chosen-by-caller"}, timeout=30, **UNKNOWN_CLIENT
    )

    request_id = response.headers["x-request-id"]
    assert MADE_HERE.fullmatch(request_id)
    assert audit_lines(server, request_id)
    assert audit_lines(server, "chosen-by-caller") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_incoming_id_from_trusted_proxy_is_kept(serve):
    """Behind a trusted proxy its X-Request-ID names the request; the forwarded client is the source."""
    server = serve("--behind-proxy")  # trusted_proxies: 127.0.0.1 and ::1 by default
    headers = {"x-request-id": "proxy-req-1", "x-forwarded-for": "203.0.113.9"}

    response = httpx.post(f"{server.url}/token", headers=headers, timeout=30, **UNKNOWN_CLIENT)

    assert response.status_code == 401
    assert response.headers.get_list("x-request-id") == ["proxy-req-1"]
    lines = audit_lines(server, "proxy-req-1")
    assert lines
    assert {line["source"] for line in lines} == {"203.0.113.9"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_malformed_id_from_trusted_proxy_is_replaced(serve):
    """Even a trusted proxy's X-Request-ID is replaced when it is not 1-64 plain characters."""
    server = serve("--behind-proxy")

    response = httpx.post(f"{server.url}/token", headers={"x-request-id": "x" * 65}, timeout=30, **UNKNOWN_CLIENT)

    assert MADE_HERE.fullmatch(response.headers["x-request-id"])
