"""PostgreSQL stopped under load (`pg_ctl stop -m fast` on a private cluster, never the shared
one): a production `bastion serve` answers 503 with Retry-After within the database timeout,
recovers within 5 s of PostgreSQL's return without a restart, and loses nothing it answered 200:
refresh tokens rotate, codes exchange, revocations stay in force."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._live import keep_session_cookie
from tests._private_services import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests.server._load import Answer, Cast, Load, production_server
from tests.server._people import authorize, exchange, refresh

__all__ = ["private_postgres", "private_redis"]  # fixtures used below

pytestmark = [pytest.mark.anyio, pytest.mark.server]

DATABASE_TIMEOUT = 2  # seconds: database_timeout_seconds of the server under test
UNAVAILABLE = "temporarily_unavailable"
CHAINS = 3


def _unexpected(answers: list[Answer]) -> list[Answer]:
    """Answers other than 200, or a 503 with Retry-After 2 and `temporarily_unavailable`."""
    return [
        a for a in answers
        if a.status != 200 and not (a.status == 503 and a.retry_after == "2" and a.body.get("error") == UNAVAILABLE)
    ]


async def _refresh_tokens(browser: httpx.AsyncClient, http: httpx.AsyncClient, spa: dict[str, Any],
                          count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        outcome = await authorize(browser, spa, None)
        answer = await exchange(http, spa, outcome.params["code"], outcome.verifier)
        assert answer.status_code == 200, answer.text
        tokens.append(answer.json()["refresh_token"])
    return tokens


async def test_postgres_stopped_under_load_answers_503_then_recovers_losing_nothing(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    """During the outage every answer is 200 or 503 + Retry-After (never 500, never past the
    timeout); within 5 s of PostgreSQL's return everything is 200 again; every refresh token and
    code answered before the outage works after it, and every revocation answered 200 holds."""
    server, cast = await production_server(
        tmp_path, private_postgres.async_url, private_redis.url,
        BASTION_DATABASE_TIMEOUT_SECONDS=str(DATABASE_TIMEOUT), BASTION_CODE_LIFETIME="300",
    )
    try:
        await _outage_under_load(server.url, cast, private_postgres)
    finally:
        server.stop()


async def _outage_under_load(url: str, cast: Cast, postgres: PrivatePostgres) -> None:
    user, spa, service, resource_server = cast.user, cast.spa, cast.service, cast.resource_server
    # The client waits longer than the server may: an answer later than this is a hang.
    timeout = httpx.Timeout(DATABASE_TIMEOUT + 4)
    browser = httpx.AsyncClient(base_url=url, timeout=timeout)
    browser.event_hooks["response"] = [keep_session_cookie(browser)]
    async with browser, httpx.AsyncClient(base_url=url, timeout=timeout) as http:
        assert (await authorize(browser, spa, user)).params.get("code")  # signed in once
        spare_codes = [await authorize(browser, spa, None) for _ in range(2)]
        spare_tokens = await _refresh_tokens(browser, http, spa, 3)
        chains = await _refresh_tokens(browser, http, spa, CHAINS)
        revoked_refresh = (await _refresh_tokens(browser, http, spa, 1))[0]
        revoke = await http.post("/revoke", data={"token": revoked_refresh, "client_id": spa["client_id"]})
        assert revoke.status_code == 200
        service_auth = (service["client_id"], service["client_secret"])
        revoked_access: list[str] = []
        load = Load(http)

        async def client_credentials() -> None:
            await load.request("client_credentials", lambda: http.post(
                "/token", data={"grant_type": "client_credentials", "scope": "read"}, auth=service_auth))

        def chain(index: int) -> Any:
            async def step() -> None:
                answer = await load.request("refresh", lambda: refresh(http, spa, chains[index]))
                if answer.status == 200:
                    chains[index] = answer.body["refresh_token"]
            return step

        async def revocation() -> None:
            issued = await load.request("client_credentials", lambda: http.post(
                "/token", data={"grant_type": "client_credentials", "scope": "read"}, auth=service_auth))
            if issued.status != 200:
                return
            token = issued.body["access_token"]
            answer = await load.request("revoke", lambda: http.post("/revoke", data={"token": token},
                                                                    auth=service_auth))
            if answer.status == 200:
                revoked_access.append(token)

        for step in (client_credentials, client_credentials, revocation, *(chain(i) for i in range(CHAINS))):
            load.loop(step)
        await asyncio.sleep(1.5)
        down = time.monotonic()
        await asyncio.to_thread(postgres.stop, "fast")
        await asyncio.sleep(3)
        await asyncio.to_thread(postgres.start)
        up = time.monotonic()
        await asyncio.sleep(7)
        await load.stop()

        after = [
            await refresh(http, spa, token) for token in spare_tokens + chains
        ]
        codes = [await exchange(http, spa, c.params["code"], c.verifier) for c in spare_codes]
        reused_revoked = await refresh(http, spa, revoked_refresh)
        introspected = [
            (await http.post("/introspect", data={"token": token},
                             auth=(resource_server["client_id"], resource_server["client_secret"]))).json()
            for token in revoked_access
        ]

    during = [a for a in load.answers if down <= a.sent < up]
    recovered = [a for a in load.answers if a.sent >= up + 5]
    assert _unexpected(load.answers) == []
    assert any(a.status == 503 for a in during), "the outage was not seen"
    assert recovered
    assert all(a.status == 200 for a in recovered)
    assert all(a.status == 200 for a in load.of("refresh") if a.sent >= up + 5)
    assert [r.status_code for r in after] == [200] * (len(spare_tokens) + CHAINS), [r.text for r in after]
    assert all(r.json()["refresh_token"] for r in after)
    assert [c.status_code for c in codes] == [200, 200], [c.text for c in codes]
    assert (reused_revoked.status_code, reused_revoked.json()["error"]) == (400, "invalid_grant")
    assert revoked_access, "no revocation was answered 200"
    assert introspected == [{"active": False}] * len(revoked_access)
