"""/metrics through a real `bastion serve` on SQLite and PostgreSQL, the limiter in memory and in
Redis: requests by route template and status, latency, grants by type and outcome, access tokens
refused at introspection and userinfo by reason, the database pool and key ages; and who may
read it (loopback clients by default, and behind a proxy the forwarded client, never a header
from a peer that is not a proxy)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.config import ConfigError, load_settings
from tests import _services
from tests._live import LiveServer, start_server
from tests.conftest import DEFAULT_AUDIENCE, make_settings, prepare
from tests.server._addresses import client_from, new_address
from tests.server._metrics import scrape, value

pytestmark = [pytest.mark.anyio, pytest.mark.server]


@pytest.fixture(params=["memory", "redis"])
def settings(request, db_url, tmp_path):
    extra: dict[str, Any] = {"redis_url": _services.need_redis()} if request.param == "redis" else {}
    return make_settings(db_url, tmp_path, **extra)


@pytest.fixture
def service(live_server: LiveServer) -> dict[str, Any]:
    return live_server.create_client(
        "--name", "Billing service", "--grant", "client_credentials", "--scope", "read",
        "--introspect", "--audience", DEFAULT_AUDIENCE,
    )  # fmt: skip


def _token(server: LiveServer, client: dict[str, Any], **data: str) -> httpx.Response:
    auth = (client["client_id"], client["client_secret"])
    return httpx.post(server.url + "/token", data={"grant_type": "client_credentials", **data}, auth=auth, timeout=10)


def _introspect(server: LiveServer, client: dict[str, Any], token: str) -> dict[str, Any]:
    auth = (client["client_id"], client["client_secret"])
    response = httpx.post(server.url + "/introspect", data={"token": token}, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_requests_grants_and_refused_tokens_are_counted(live_server, service):
    """Three grants, a wrong secret, an unsupported grant, two JWKS reads, an unknown path, and
    tokens refused at introspection (malformed, revoked) and userinfo (malformed, no openid
    scope) appear as exactly those counts, by route template and status, type and outcome,
    endpoint and reason."""
    tokens = [_token(live_server, service).json()["access_token"] for _ in range(3)]
    wrong = _token(live_server, {**service, "client_secret": "wrong"})
    unsupported = _token(live_server, service, grant_type="password")
    jwks = [httpx.get(live_server.url + "/jwks", timeout=10).status_code for _ in range(2)]
    unknown = httpx.get(live_server.url + "/no/such/path?token=x", timeout=10)
    auth = (service["client_id"], service["client_secret"])
    revoked = httpx.post(live_server.url + "/revoke", data={"token": tokens[0]}, auth=auth, timeout=10)
    inactive = [_introspect(live_server, service, token) for token in ("not-a-token", tokens[0])]
    active = _introspect(live_server, service, tokens[1])
    userinfo = [
        httpx.get(live_server.url + "/userinfo", headers={"authorization": f"Bearer {token}"}, timeout=10)
        for token in ("not-a-token", tokens[2])
    ]
    samples = scrape(live_server)

    assert (wrong.status_code, unsupported.status_code, jwks, unknown.status_code) == (401, 400, [200, 200], 404)
    assert revoked.status_code == 200
    assert inactive == [{"active": False}, {"active": False}]
    assert active["active"] is True
    assert [response.status_code for response in userinfo] == [401, 403]
    requests = "bastion_http_requests_total"
    assert value(samples, requests, route="/token", status="200") == 3
    assert value(samples, requests, route="/token", status="401") == 1
    assert value(samples, requests, route="/token", status="400") == 1
    assert value(samples, requests, route="/jwks", status="200") == 2
    assert value(samples, requests, route="unmatched", status="404") == 1
    assert value(samples, requests, route="/introspect", status="200") == 3
    assert value(samples, "bastion_http_request_duration_seconds_count", route="/token") == 5
    assert value(samples, "bastion_http_request_duration_seconds_bucket", route="/token", le="+Inf") == 5
    grants = "bastion_grants_total"
    assert value(samples, grants, grant_type="client_credentials", outcome="issued") == 3
    assert value(samples, grants, grant_type="client_credentials", outcome="invalid_client") == 1
    assert value(samples, grants, grant_type="none", outcome="unsupported_grant_type") == 1
    failures = "bastion_token_validation_failures_total"
    assert {
        (dict(labels)["endpoint"], dict(labels)["reason"]): count
        for (name, labels), count in samples.items()
        if name == failures
    } == {
        ("/introspect", "malformed"): 1,
        ("/introspect", "revoked"): 1,
        ("/userinfo", "malformed"): 1,
        ("/userinfo", "insufficient_scope"): 1,
    }
    assert value(samples, "bastion_db_pool_in_use") >= 0
    assert ("bastion_db_pool_waiting", frozenset()) in samples
    for alg in ("ES256", "RS256"):
        assert 0 <= value(samples, "bastion_signing_key_age_seconds", alg=alg) < 3600


async def test_other_addresses_get_the_unknown_route_answer(live_server):
    """A client at another address (here 127.x.y.z, not in metrics_clients) gets exactly what an
    unknown path gets: 404 Not Found, no hint that /metrics exists."""
    async with client_from(live_server, new_address()) as stranger:
        refused = await stranger.get("/metrics")
        unknown = await stranger.get("/no-such-route")
    async with client_from(live_server, "127.0.0.1") as local:
        allowed = await local.get("/metrics")

    assert (refused.status_code, refused.text) == (404, "Not Found")
    assert (refused.status_code, refused.text, refused.headers["content-type"]) == (
        unknown.status_code, unknown.text, unknown.headers["content-type"]
    )
    assert allowed.status_code == 200
    assert "bastion_http_requests_total" in allowed.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_any_method_from_a_stranger_gets_404(live_server, method):
    """A stranger gets the unknown-route 404 whatever the method (a 405 would reveal /metrics);
    an allowed scraper using another method than GET gets 405."""
    async with client_from(live_server, new_address()) as stranger:
        refused = await stranger.request(method, "/metrics")
    async with client_from(live_server, "127.0.0.1") as local:
        wrong_method = await local.request(method, "/metrics")

    assert (refused.status_code, refused.text) == (404, "Not Found")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, HEAD"


@pytest.fixture
def proxied(db_url: str, tmp_path: Path):
    """`--behind-proxy` (proxy: 127.0.0.1) with 203.0.113.0/24 allowed to scrape as well."""
    settings = make_settings(db_url, tmp_path)
    asyncio.run(prepare(settings))
    server = start_server(
        settings, tmp_path, args=["--behind-proxy"], BASTION_METRICS_CLIENTS="127.0.0.1,::1,203.0.113.0/24"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("peer", "forwarded", "status"),
    [
        pytest.param("proxy", "198.51.100.7", 404, id="through-proxy-from-the-internet"),
        pytest.param("proxy", "127.0.0.1, 198.51.100.7", 404, id="through-proxy-with-a-spoofed-loopback-hop"),
        pytest.param("stranger", "127.0.0.1", 404, id="spoofed-header-from-a-non-proxy-peer"),
        pytest.param("stranger", "203.0.113.7", 404, id="spoofed-allowed-address-from-a-non-proxy-peer"),
        pytest.param("proxy", "203.0.113.7", 200, id="through-proxy-from-a-configured-scraper"),
        pytest.param("proxy", None, 200, id="the-proxy-host-itself"),
    ],
)
async def test_behind_a_proxy_the_forwarded_client_is_judged(proxied, peer, forwarded, status):
    """Behind a proxy, /metrics answers only when the client the trusted proxy forwards is in
    metrics_clients; X-Forwarded-For from a peer that is not a proxy is not believed."""
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    address = "127.0.0.1" if peer == "proxy" else new_address()
    async with client_from(proxied, address) as client:
        response = await client.get("/metrics", headers=headers)

    assert response.status_code == status
    if status == 404:
        assert response.text == "Not Found"


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        pytest.param("BASTION_METRICS_CLIENTS", "not-an-address", "metrics_clients", id="metrics-clients"),
        pytest.param("BASTION_ACCESS_LOG", "/no/such/dir/access.log", "access_log", id="access-log-dir"),
    ],
)
def test_bad_settings_are_refused_by_name(variable, raw, message):
    """A metrics_clients entry that is no address, or an access log in a missing directory, is a
    ConfigError naming the setting."""
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"BASTION_ISSUER": "http://127.0.0.1:8000", variable: raw})

    assert error.value.setting == message
