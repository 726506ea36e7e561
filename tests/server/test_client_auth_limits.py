"""Failed client authentications are limited per source address (issue 6 wiring; never per
client_id since issue 12), and a process refuses unchecked an address it saw spend its allowance."""

from __future__ import annotations

import pytest

from bastion.ratelimit import MemoryStore, Metrics, RateLimiter, parse_policies
from bastion.server.limits import RateLimited, ServerLimits

pytestmark = pytest.mark.anyio


async def test_flood_of_wrong_secrets_gets_429_before_guessing(http, register):
    """After 20 wrong secrets a minute, even the right secret is refused with 429 and Retry-After."""
    client = await register()
    for _ in range(20):
        wrong = await http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=(client["client_id"], "guess")
        )
        assert wrong.status_code == 401

    refused = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client["client_id"], client["client_secret"])
    )

    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert "ratelimit-policy" in refused.headers


async def test_successful_traffic_is_not_limited_by_default(http, register):
    """Fifty good requests in a row all succeed: only failures count by default."""
    client = await register()
    for _ in range(50):
        ok = await http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=(client["client_id"], client["client_secret"])
        )
        assert ok.status_code == 200


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _limits(clock: _Clock) -> ServerLimits:
    policies = parse_policies({"client_auth_failures_per_address": {"limit": "1/minute"}})
    return ServerLimits(RateLimiter(MemoryStore(), policies, clock=clock, metrics=Metrics()))


async def test_an_address_is_refused_unchecked_until_the_limiter_lets_it_retry():
    """Once a failure spends an address's allowance, the process refuses it before checking, with
    the remaining wait, until that wait is over; other addresses are untouched."""
    clock = _Clock()
    limits = _limits(clock)
    await limits.record_client_auth_failure("192.0.2.1")  # spends the one allowed failure: 401

    with pytest.raises(RateLimited) as refused:
        limits.check_client_auth("192.0.2.1")
    limits.check_client_auth("192.0.2.2")
    clock.now += 59.0
    with pytest.raises(RateLimited) as later:
        limits.check_client_auth("192.0.2.1")
    clock.now += 1.0
    limits.check_client_auth("192.0.2.1")

    assert [d.retry_after for d in refused.value.decisions] == [60.0]
    assert [d.retry_after for d in later.value.decisions] == [1.0]


async def test_a_process_remembers_at_most_ten_thousand_refused_addresses():
    """Past 10,000 remembered addresses the oldest is forgotten (its next guess is checked, then
    refused by the store); memory stays bounded however many addresses an attacker has."""
    limits = _limits(_Clock())
    addresses = [f"2001:db8::{index:x}" for index in range(10_001)]
    for address in addresses:
        await limits.record_client_auth_failure(address)

    limits.check_client_auth(addresses[0])
    with pytest.raises(RateLimited):
        limits.check_client_auth(addresses[1])
    with pytest.raises(RateLimited):
        limits.check_client_auth(addresses[-1])
    with pytest.raises(RateLimited) as store_refused:
        await limits.record_client_auth_failure(addresses[0])

    assert store_refused.value.decisions[0].policy == "client_auth_failures_per_address"
