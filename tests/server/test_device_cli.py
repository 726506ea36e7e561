"""`bastion device-login`, the device side of RFC 8628: issuer checks, refusals with exact errors,
and polite polling (the interval grows by 5 s after each `slow_down`, RFC 8628 §3.5)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.cli.device_login import DeviceClient, DeviceLoginError, check_issuer, discover
from bastion.config import Settings
from tests._live import LiveServer, start_server
from tests.cli._run import invoke
from tests.conftest import prepare

pytestmark = pytest.mark.server

# The verdict is about the command, not storage: the live tests run on one database.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def device_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real server whose devices poll every second."""
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_DEVICE_POLL_INTERVAL="1")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("issuer", "accepted"),
    [
        pytest.param("https://auth.example/", "https://auth.example", id="https"),
        pytest.param("http://127.0.0.1:8000", "http://127.0.0.1:8000", id="loopback-http"),
        pytest.param("http://localhost:8000", "http://localhost:8000", id="localhost-http"),
    ],
)
def test_issuer_accepted(issuer, accepted):
    """https issuers, and http on loopback only, are accepted (trailing slash dropped)."""
    assert check_issuer(issuer) == accepted


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("http://auth.example", id="remote-http"),
        pytest.param("ftp://auth.example", id="other-scheme"),
        pytest.param("auth.example", id="no-scheme"),
    ],
)
def test_device_login_refuses_an_insecure_issuer(issuer):
    """The command refuses to send a device code over plain http to a non-loopback host (exit 2)."""
    result = invoke("device-login", "--issuer", issuer, "--client-id", "x")

    assert result.exit_code == 2
    assert result.stderr == "error: --issuer must be an https URL (http only on a loopback host)\n"
    assert result.stdout == ""


@SQLITE_ONLY
def test_device_login_for_a_client_without_the_grant(device_server):
    """A client not registered for the device grant ends with unauthorized_client (exit 2)."""
    client = device_server.create_client("--name", "reader", "--grant", "client_credentials", "--scope", "read")

    result = invoke(
        "device-login", "--issuer", device_server.url, "--client-id", client["client_id"], "--scope", "read",
        DEVICE_LOGIN_CLIENT_SECRET=client["client_secret"],
    )  # fmt: skip

    assert result.exit_code == 2
    assert result.stderr == f"error: unauthorized_client: this client may not use the {DEVICE_GRANT} grant\n"


@SQLITE_ONLY
def test_polling_backs_off_after_slow_down(device_server):
    """Polls made without waiting get slow_down, and the command's interval grows 1, 6, 11 s."""
    client = device_server.create_client(
        "--name", "TV", "--grant", "device_code", "--auth-method", "none", "--scope", "read"
    )
    waits: list[float] = []

    def impatient(seconds: float) -> None:
        # Never actually waits, so the server sees every poll as early; stops after four waits.
        waits.append(seconds)
        if len(waits) == 4:
            raise KeyboardInterrupt

    with httpx.Client(timeout=30) as http:
        device = DeviceClient(http, discover(http, device_server.url), client["client_id"], sleep=impatient)
        started = device.start("read")
        with pytest.raises(KeyboardInterrupt):
            device.poll(started)

    assert waits == [1.0, 1.0, 6.0, 11.0]


@SQLITE_ONLY
def test_discovery_must_name_the_issuer(device_server):
    """A discovery document for another issuer is refused (RFC 8414 §3.3)."""
    with httpx.Client(timeout=30) as http, pytest.raises(DeviceLoginError) as raised:
        discover(http, device_server.url.replace("127.0.0.1", "localhost"))

    assert str(raised.value) == (
        f"discovery names issuer {device_server.url!r}, not {device_server.url.replace('127.0.0.1', 'localhost')!r}"
    )
