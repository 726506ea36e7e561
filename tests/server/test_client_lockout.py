"""A stranger who knows a client's id cannot lock it out (issue 12, item 2), through a real
`bastion serve` on SQLite and PostgreSQL with the limiter in memory and in Redis: failed client
authentications are counted per source address, never per client_id (which is public), so the
attacker's address is refused while the client, from its own address, keeps working at every
endpoint that authenticates clients; and a client that authenticates costs no limiter decision
(no store round trip) at all."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests import _services
from tests._live import LiveServer
from tests.conftest import DEFAULT_AUDIENCE, make_settings
from tests.server._addresses import client_from, new_address

pytestmark = [pytest.mark.anyio, pytest.mark.server]

LIMIT = 20  # client_auth_failures_per_address, the default: 20 a minute
CALLBACK = "https://spa.example/callback"


@pytest.fixture(params=["memory", "redis"])
def settings(request, db_url, tmp_path):
    """The default limits, with the limiter in process memory or in Redis."""
    extra: dict[str, Any] = {"redis_url": _services.need_redis()} if request.param == "redis" else {}
    return make_settings(db_url, tmp_path, **extra)


@pytest.fixture
def confidential(live_server: LiveServer) -> dict[str, Any]:
    return live_server.create_client(
        "--name", "Billing service", "--grant", "client_credentials", "--grant", "device_code",
        "--scope", "read", "--introspect", "--audience", DEFAULT_AUDIENCE,
    )  # fmt: skip


def _request(endpoint: str, client_id: str, secret: str) -> dict[str, Any]:
    """The arguments of a request to `endpoint` authenticated with Basic `client_id:secret`."""
    auth = (client_id, secret)
    if endpoint == "/revocations":
        return {"method": "GET", "url": endpoint, "params": {"since": "0"}, "auth": auth}
    data = {
        "/token": {"grant_type": "client_credentials"},
        "/introspect": {"token": "not-a-token"},
        "/revoke": {"token": "not-a-token"},
        "/device_authorization": {"scope": "read"},
    }[endpoint]
    return {"method": "POST", "url": endpoint, "data": data, "auth": auth}


ENDPOINTS = ("/token", "/introspect", "/revoke", "/device_authorization", "/revocations")


async def test_a_stranger_cannot_lock_a_client_out_of_any_endpoint(live_server, confidential):
    """At each endpoint with client authentication, an attacker's flood of wrong secrets for the
    client's id is refused at the attacker's address after 20, while the client's right secret
    from its own address is answered 200 throughout."""
    client_id, secret = confidential["client_id"], confidential["client_secret"]
    attacker_answers, client_answers = {}, {}
    async with client_from(live_server, new_address()) as client:
        for endpoint in ENDPOINTS:
            async with client_from(live_server, new_address()) as attacker:
                flood = [await attacker.request(**_request(endpoint, client_id, "guess")) for _ in range(LIMIT + 5)]
            attacker_answers[endpoint] = [answer.status_code for answer in flood]
            refused = flood[-1]
            assert refused.json()["error"] == "rate_limited", refused.text
            assert refused.json()["policy"] == "client_auth_failures_per_address"
            assert int(refused.headers["retry-after"]) >= 1
            client_answers[endpoint] = (await client.request(**_request(endpoint, client_id, secret))).status_code

    assert attacker_answers == {endpoint: [401] * LIMIT + [429] * 5 for endpoint in ENDPOINTS}
    assert client_answers == dict.fromkeys(ENDPOINTS, 200)


async def test_a_bogus_secret_for_a_public_client_does_not_block_its_users(live_server):
    """Posting a made-up client_secret with a public client's id from one address does not stop
    anyone else's code exchange: it is judged on its grant (invalid_grant), never answered 429."""
    spa = live_server.create_client(
        "--name", "Example SPA", "--grant", "authorization_code", "--grant", "refresh_token",
        "--auth-method", "none", "--redirect-uri", CALLBACK, "--scope", "openid offline_access",
    )  # fmt: skip
    bogus = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": spa["client_id"], "client_secret": "x"}
    async with client_from(live_server, new_address()) as attacker:
        flood = [(await attacker.post("/token", data=bogus)).status_code for _ in range(LIMIT + 5)]
    exchange = {
        "grant_type": "authorization_code", "code": "expired-or-unknown", "redirect_uri": CALLBACK,
        "client_id": spa["client_id"], "code_verifier": "v" * 43,
    }  # fmt: skip
    async with client_from(live_server, new_address()) as user_agent:
        answer = await user_agent.post("/token", data=exchange)

    assert flood == [401] * LIMIT + [429] * 5
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_an_address_over_the_limit_is_refused_before_its_guess_is_checked(live_server, confidential):
    """Brute force is still stopped: past 20 failures, the attacker's address is answered 429
    even when it finally sends the right secret (its guesses are not being checked)."""
    client_id, secret = confidential["client_id"], confidential["client_secret"]
    async with client_from(live_server, new_address()) as attacker:
        guess = _request("/token", client_id, "guess")
        failures = [(await attacker.request(**guess)).status_code for _ in range(LIMIT)]
        right = await attacker.request(**_request("/token", client_id, secret))

    assert failures == [401] * LIMIT
    assert right.status_code == 429
    assert right.json()["error"] == "rate_limited"


def _client_auth_decisions(server: LiveServer) -> dict[str, int]:
    """The limiter's decisions on the client-authentication policy so far, from /metrics."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    pattern = r'bastion_ratelimit_decisions_total\{([^}]*policy="client_auth_failures_[^"]*"[^}]*)\} (\d+)'
    return {labels: int(value) for labels, value in re.findall(pattern, text)}


def _total(decisions: dict[str, int]) -> int:
    return sum(decisions.values())


async def test_a_client_that_authenticates_costs_no_limiter_decision(live_server, confidential):
    """Fifty right secrets make no limiter decision (no Redis round trip); one wrong secret makes one hit."""
    client_id, secret = confidential["client_id"], confidential["client_secret"]
    before = _total(_client_auth_decisions(live_server))
    async with client_from(live_server, new_address()) as client:
        answers = [(await client.request(**_request("/token", client_id, secret))).status_code for _ in range(50)]
        after_successes = _total(_client_auth_decisions(live_server))
        wrong = await client.request(**_request("/token", client_id, "guess"))
    after_failure = _client_auth_decisions(live_server)

    assert answers == [200] * 50
    assert after_successes - before == 0
    assert wrong.status_code == 401
    assert _total(after_failure) - after_successes == 1
    assert [labels for labels, count in after_failure.items() if count] == [
        'op="hit",outcome="allowed",policy="client_auth_failures_per_address"'
    ]
