"""Failed client authentications are limited per client_id and per source address (issue 6 wiring)."""

from __future__ import annotations

import pytest

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
