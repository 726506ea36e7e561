"""npm `openid-client` (v6) completes the Device Authorization Grant (RFC 8628) against a real
Bastion: discovery, `initiateDeviceAuthorization`, `pollDeviceAuthorizationGrant` (with its own
`slow_down` and `authorization_pending` handling) and ID token validation; a person approves or
denies the code through Bastion's pages in between."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.config import Settings
from tests._live import LiveServer, start_server
from tests._services import need_node_package
from tests.conftest import prepare
from tests.server._device import verify
from tests.server._people import Person
from tests.server.test_browser_flow import PASSWORD, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.server]

SCRIPT = Path(__file__).with_name("device_openid_client.mjs")
SCOPE = "openid profile offline_access"
# The verdict is about openid-client's requests, not storage: these run on one database.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class LoopbackAsSecure(httpx.AsyncBaseTransport):
    """Sends https://127.0.0.1 requests as http, so httpx keeps and sends the `Secure` session
    cookie over loopback, which browsers also treat as a secure context."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def device_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real server whose devices poll every second."""
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_DEVICE_POLL_INTERVAL="1")
    try:
        yield server
    finally:
        server.stop()


def _start_device(server: LiveServer, node_dir: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    client = server.create_client(
        "--name", "openid-client TV", "--grant", "device_code", "--grant", "refresh_token",
        "--auth-method", "none", "--scope", SCOPE,
    )  # fmt: skip
    process = subprocess.Popen(
        # Evaluated from tests/node (like verify_jose.mjs) so `openid-client` resolves there.
        ["node", "--input-type=module", "-e", SCRIPT.read_text(encoding="utf-8"),
         server.url, client["client_id"], SCOPE],
        cwd=node_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise AssertionError(process.communicate(timeout=10))
    return process, json.loads(line)


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    result: dict[str, Any] = json.loads(stdout)
    return result


async def _decide(server: LiveServer, user: dict[str, Any], user_code: str, decision: str) -> str:
    person = Person(user["sub"], user["username"], PASSWORD)
    base = server.url.replace("http://", "https://")
    async with httpx.AsyncClient(transport=LoopbackAsSecure(), base_url=base, timeout=30) as browser:
        done = await verify(browser, person, user_code, decision=decision)
    return done.text


@SQLITE_ONLY
@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_openid_client_device_flow(device_server, decision):
    """openid-client gets validated tokens after approval, and an access_denied error after a denial."""
    node_dir = need_node_package("openid-client")
    user = create_user(device_server, "alice")
    process, started = _start_device(device_server, node_dir)
    try:
        page = await _decide(device_server, user, started["user_code"], decision)
        result = _finish(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)

    assert started["verification_uri"] == device_server.url + "/device"
    assert started["interval"] == 1
    if decision == "deny":
        assert "You denied the request" in page
        assert result == {"error": "access_denied", "description": "the user denied the request"}
        return
    assert "You allowed the device" in page
    tokens, claims = result["tokens"], result["claims"]
    assert tokens["token_type"].lower() == "bearer"
    assert set(tokens) >= {"access_token", "id_token", "refresh_token", "expires_in", "scope"}
    assert (claims["iss"], claims["sub"], claims["amr"]) == (device_server.url, user["sub"], ["pwd"])
