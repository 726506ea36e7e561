"""Redis killed under load (a private `redis-server`, never the shared one): each rate-limit
policy answers as its `on_store_error` says (the limits on guessing refuse, the limit on
anonymous storage and a configured `open` policy admit), tokens are still issued, and everything
is decided by Redis again once it is back, without a restart; a refusal made while Redis was
down is not remembered after it returns."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from bastion.ratelimit import Metrics, RateLimiter, RedisStore, default_policies
from bastion.server.limits import ADDRESS_FAILURES, RateLimited, ServerLimits
from tests._live import keep_session_cookie
from tests._private_services import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests.server._load import Cast, Load, production_server
from tests.server._people import authorize_params, follow, pkce, submit

__all__ = ["private_postgres", "private_redis"]  # fixtures used below

pytestmark = [pytest.mark.anyio, pytest.mark.server]

# A configured policy on successful token requests that admits without Redis, and one on
# introspection that refuses without it (limits high enough never to bind while Redis is up).
CONFIG = """
[ratelimit.policies.token_per_client]
key = ["client_id"]
routes = ["/token"]
limit = "100000/minute"
on_store_error = "open"

[ratelimit.policies.introspect_per_address]
key = ["source_address"]
routes = ["/introspect"]
limit = "100000/minute"
on_store_error = "closed"
"""


class _Probes:
    """One request per policy, each answered as (status, error or page text)."""

    def __init__(self, http: httpx.AsyncClient, cast: Cast) -> None:
        self.http, self.cast = http, cast

    async def token(self, secret: str) -> tuple[int, str | None]:
        response = await self.http.post("/token", data={"grant_type": "client_credentials", "scope": "read"},
                                        auth=(self.cast.service["client_id"], secret))
        return response.status_code, response.json().get("error")

    async def introspection(self) -> tuple[int, str | None]:
        rs = self.cast.resource_server
        response = await self.http.post("/introspect", data={"token": "not-a-token"},
                                        auth=(rs["client_id"], rs["client_secret"]))
        return response.status_code, response.json().get("error")

    async def sign_in(self) -> tuple[int, int | str]:
        """A new browser: the anonymous /authorize (its login page), then the right password
        ("consent": signed in, the consent page shown)."""
        async with httpx.AsyncClient(base_url=str(self.http.base_url), timeout=10) as browser:
            browser.event_hooks["response"] = [keep_session_cookie(browser)]
            _verifier, challenge = pkce()
            page = await follow(browser, await browser.get("/authorize",
                                                           params=authorize_params(self.cast.spa, challenge)))
            if page.status_code != 200:
                return page.status_code, 0
            user = self.cast.user
            signed_in = await submit(browser, page, "/login", username=user.username, password=user.password)
            if signed_in.status_code == 200 and 'action="/consent"' in signed_in.text:
                return page.status_code, "consent"
            return page.status_code, signed_in.status_code


async def _until(probe: object, expected: object, seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while True:
        got = await probe()  # type: ignore[operator]  # an async callable
        if got == expected or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


async def test_redis_killed_under_load_each_policy_fails_as_configured_and_recovers(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    """With Redis down: a right secret gets a token (200) and a wrong one 429 rate_limited; the
    configured closed policy refuses introspection (429); an anonymous /authorize still shows the
    login page (200) but signing in is refused (429). Once Redis is back, each is decided by Redis
    again: 401 invalid_client, introspection 200, signed in. Tokens were issued throughout."""
    config = tmp_path / "bastion.toml"
    config.write_text(CONFIG)
    server, cast = await production_server(
        tmp_path, private_postgres.async_url, private_redis.url, BASTION_CONFIG=str(config)
    )
    secret, wrong = cast.service["client_secret"], "not-the-secret"
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            probes, load = _Probes(http, cast), Load(http)

            async def client_credentials() -> None:
                await load.request("client_credentials", lambda: http.post(
                    "/token", data={"grant_type": "client_credentials", "scope": "read"},
                    auth=(cast.service["client_id"], secret)))

            for _ in range(3):
                load.loop(client_credentials)
            before = (await probes.token(wrong), await probes.introspection())
            await asyncio.sleep(0.5)
            private_redis.kill()
            down = (await probes.token(secret), await probes.token(wrong), await probes.introspection(),
                    await probes.sign_in())
            refused = await http.post("/token", data={"grant_type": "client_credentials"},
                                      auth=(cast.service["client_id"], wrong))
            await asyncio.to_thread(private_redis.start)
            back = (await _until(lambda: probes.token(wrong), (401, "invalid_client"), 5),
                    await _until(probes.introspection, (200, None), 5),
                    await probes.sign_in())
            await asyncio.sleep(0.5)
            await load.stop()
    finally:
        server.stop()

    assert before == ((401, "invalid_client"), (200, None))
    assert down == ((200, None), (429, "rate_limited"), (429, "rate_limited"), (200, 429))
    assert (refused.headers["retry-after"], refused.json()["policy"]) == ("1", ADDRESS_FAILURES)
    assert back == ((401, "invalid_client"), (200, None), (200, "consent"))
    assert load.answers
    assert {a.status for a in load.answers} == {200}


async def test_a_refusal_made_while_redis_was_down_is_not_remembered(private_redis: PrivateRedis) -> None:
    """A failed client authentication refused only because Redis is down (fail closed) is not
    kept by the process's refusal cache: once Redis is back, that address is checked again."""
    store = RedisStore(private_redis.url, key_prefix="refusal:", timeout=2)
    limits = ServerLimits(RateLimiter(store, default_policies(), metrics=Metrics()))
    try:
        private_redis.kill()
        with pytest.raises(RateLimited) as refused:
            await limits.record_client_auth_failure("192.0.2.1")
        private_redis.start()
        limits.check_client_auth("192.0.2.1")
        await limits.record_client_auth_failure("192.0.2.1")
    finally:
        await store.aclose()

    assert [(d.allowed, d.degraded, d.policy) for d in refused.value.decisions] == [(False, True, ADDRESS_FAILURES)]
