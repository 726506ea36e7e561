"""`bastion edge serve` with real services behind it: Bastion's own authorization server as the
issuer, API keys in Bastion's database (SQLite and PostgreSQL), and a quota store that is down."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from bastion.store import Database
from tests._live import LiveServer
from tests.edge._edge import running_edge
from tests.edge.test_decision import write_policy
from tests.guard._issuer import free_port, running_issuer
from tests.guard.test_apikeys_database import stored
from tests.interop._peers import audience, client_credentials_token, create_reader


@pytest.mark.server
def test_a_bastion_token_is_decided_and_its_revocation_followed(live_server: LiveServer, tmp_path: Path) -> None:
    """A client-credentials token from `bastion serve` passes by discovery alone; revoked at the
    server (RFC 7009), it is refused once the edge's poll of /revocations has seen it."""
    client = create_reader(live_server)
    rs = live_server.create_client("--name", "edge", "--grant", "client_credentials", "--scope", "read",
                                   "--introspect", "--audience", audience(live_server))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"issuer: {live_server.url}\naudience: {audience(live_server)}\nupstream: http://127.0.0.1:9\n"
        f"client_id: {rs['client_id']}\nclient_secret: {rs['client_secret']}\n"
        "routes:\n  - {path: /things, methods: [GET], scopes: [read]}\n"
        "  - {path: /admin, methods: [GET], scopes: [admin]}\n"
    )
    token = client_credentials_token(live_server, client)
    with running_edge(policy) as edge:
        allowed = edge.decide("GET", "/things", token=token)
        scoped = edge.decide("GET", "/admin", token=token)
        revoked = httpx.post(live_server.url + "/revoke", data={"token": token, "token_type_hint": "access_token"},
                             auth=(client["client_id"], client["client_secret"]), timeout=10)
        assert revoked.status_code == 200
        deadline = time.monotonic() + 30
        while (after := edge.decide("GET", "/things", token=token)).status_code == 200:
            assert time.monotonic() < deadline, "the revocation was never applied"
            time.sleep(0.5)

    assert allowed.status_code == 200
    assert allowed.headers["x-bastion-client-id"] == client["client_id"]
    assert allowed.headers["x-bastion-scope"] == "read"
    assert (scoped.status_code, scoped.json()["error"]) == (403, "insufficient_scope")
    assert (after.status_code, after.json()["error"]) == (401, "invalid_token")


def test_api_keys_in_bastions_database(db_url: str, tmp_path: Path) -> None:
    """`api_keys: {database: URL}` checks the keys `bastion apikeys` keeps, on SQLite and PostgreSQL."""

    async def create() -> tuple[str, str]:
        database = Database(db_url, pool_size=1)
        await database.upgrade()
        key, record = await stored(database)
        await database.dispose()
        return key, record.key_id

    key, key_id = asyncio.run(create())
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"issuer: http://127.0.0.1:{free_port()}\naudience: https://api.test\nupstream: http://127.0.0.1:9\n"
        f"api_keys: {{database: {json.dumps(db_url)}}}\n"
        "routes:\n  - {path: /keys, methods: [GET], scopes: [notes:read], api_key: true}\n"
    )
    with running_edge(policy) as edge:
        allowed = edge.decide("GET", "/keys", headers={"X-API-Key": key})
        wrong = edge.decide("GET", "/keys", headers={"X-API-Key": key[:-8] + "AAAAAAAA"})

    assert allowed.status_code == 200
    assert allowed.headers["x-bastion-api-key-id"] == key_id
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_api_key")


def test_a_quota_store_that_is_down_is_503(tmp_path: Path) -> None:
    """Redis unreachable: a route with a quota cannot be decided (503, the proxy fails closed);
    a route without one still is."""
    with running_issuer() as issuer:
        (tmp_path / "apikeys.json").write_text('{"keys": []}')
        policy = write_policy(tmp_path, issuer.issuer, f"redis: redis://127.0.0.1:{free_port()}/0\n")
        with running_edge(policy) as edge:
            limited = edge.decide("GET", "/limited", token=issuer.mint(scope="notes:read"))
            plain = edge.decide("GET", "/notes", token=issuer.mint(scope="notes:read"))

    assert (limited.status_code, limited.json()["error"]) == (503, "temporarily_unavailable")
    assert plain.status_code == 200


def test_every_decision_is_an_audit_line_with_the_request_id(tmp_path: Path) -> None:
    """The decision writes one audit line per request, naming the proxy's request id and the outcome."""
    with running_issuer() as issuer:
        (tmp_path / "apikeys.json").write_text('{"keys": []}')
        with running_edge(write_policy(tmp_path, issuer.issuer)) as edge:
            edge.decide("GET", "/notes", token=issuer.mint(scope="notes:read"), headers={"X-Request-ID": "audit-1"})
            edge.decide("GET", "/nowhere", headers={"X-Request-ID": "audit-2"})
            edge.decide("GET", "/notes", headers={"X-Forwarded-Method": ""})
            deadline = time.monotonic() + 10
            while "audit-2" not in edge.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            lines = [json.loads(line) for line in edge.log.read_text().splitlines() if line.startswith("{")]

    decisions = {line["request_id"]: line for line in lines if line.get("event") == "edge.decision"}
    assert decisions["audit-1"]["outcome"] == "allowed"
    assert decisions["audit-1"]["sub"] == "alice"
    assert (decisions["audit-2"]["status"], decisions["audit-2"]["error"]) == (404, "not_found")
    assert any(line["status"] == 400 for line in decisions.values())



def _outside_address() -> str:
    """An address of this machine that is not loopback (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
        except OSError:
            address = "127.0.0.1"
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this machine has no address besides loopback to ask the decision service from")
    return address


@pytest.mark.parametrize(("trusted", "status"), [
    pytest.param(False, 403, id="untrusted-peer"),
    pytest.param(True, 200, id="listed-in-trusted-proxies"),
])
def test_only_the_proxy_may_ask(tmp_path: Path, trusted: bool, status: int) -> None:
    """A peer that is neither loopback nor in trusted_proxies is refused 403, whatever it claims."""
    address = _outside_address()
    (tmp_path / "apikeys.json").write_text('{"keys": []}')
    extra = f"trusted_proxies: [{address}]\n" if trusted else ""
    policy = write_policy(tmp_path, "http://127.0.0.1:9", extra)
    with running_edge(policy, host=address, reach=address) as edge:
        response = edge.decide("GET", "/health")

    assert response.status_code == status
    if not trusted:
        assert response.json() == {"error": "forbidden", "error_description": "Only the proxy may ask for decisions."}


def test_a_credential_in_the_query_string_never_reaches_the_audit_line(tmp_path: Path) -> None:
    """A token or key sent in the URI (refused or ignored) is written as [redacted]; the rest of
    the query is kept."""
    with running_issuer() as issuer:
        (tmp_path / "apikeys.json").write_text('{"keys": []}')
        with running_edge(write_policy(tmp_path, issuer.issuer)) as edge:
            secret = issuer.mint(scope="notes:read")
            edge.decide("GET", f"/notes?page=2&access_token={secret}", headers={"X-Request-ID": "q-1"})
            edge.decide("GET", f"/notes?%61pi_key=k3y-{secret[-12:]}&x=1", headers={"X-Request-ID": "q-2"})
            deadline = time.monotonic() + 5
            while "q-2" not in edge.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            text = edge.log.read_text()
    assert secret not in text
    assert secret[-12:] not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    uris = {line["request_id"]: line["uri"] for line in lines if line.get("event") == "edge.decision"}
    assert uris["q-1"] == "/notes?page=2&access_token=[redacted]"
    assert uris["q-2"] == "/notes?%61pi_key=[redacted]&x=1"
