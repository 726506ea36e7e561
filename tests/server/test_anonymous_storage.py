"""What strangers make a live server store: cookie-less floods of `GET /authorize`, `GET /device`
and public `POST /device_authorization` leave a bounded number of rows (counted in the database),
and the refusals past the `anonymous_requests_per_address` limit are 429s with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bastion.config import Settings
from bastion.protocol.rfc7636 import s256_challenge
from bastion.server.context import ServerContext
from bastion.store import Database
from bastion.store.models import authorization_requests, browser_sessions, device_codes
from tests._live import LiveServer, start_server
from tests.conftest import prepare
from tests.server._people import *  # noqa: F403 - fixtures (browser, spa, make_user)
from tests.server._people import authorize_params, follow, hidden_fields, pkce, query_of, submit

pytestmark = pytest.mark.anyio

CALLBACK = "https://app.example/callback"
LIMIT = 20
FLOOD = 300
# GCRA at 20 an hour: the first 20 pass, the next one is 180 s away; nothing refills during a test.
CONFIG = f'[ratelimit.policies.anonymous_requests_per_address]\nlimit = "{LIMIT}/hour"\n'
REFUSAL = "Too many sign-in requests came from your network. Try again in 3 minutes."


async def count_rows(settings: Settings) -> dict[str, int]:
    database = Database(settings.resolved_database_url, pool_size=1)
    try:
        async with database.engine.connect() as conn:
            return {
                table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (browser_sessions, authorization_requests, device_codes)
            }
    finally:
        await database.dispose()


@pytest.fixture
def limited_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real `bastion serve` whose anonymous allowance is 20 rows an hour per address."""
    config = tmp_path / "bastion.toml"
    config.write_text(CONFIG)
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_CONFIG=str(config))
    try:
        yield server
    finally:
        server.stop()


def _authorize_query(client_id: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "s",
        "code_challenge": s256_challenge("v" * 43),
        "code_challenge_method": "S256",
    }


@pytest.mark.server
async def test_a_cookieless_flood_of_authorize_and_device_pages_stores_a_bounded_number_of_rows(
    limited_server, settings
):
    """Hundreds of cookie-less GET /authorize store only the allowance's pending requests and no
    session; hundreds of GET /device store nothing; the rest are 429 pages with Retry-After."""
    client = limited_server.create_client(
        "--name", "spa", "--grant", "authorization_code", "--auth-method", "none", "--redirect-uri", CALLBACK,
        "--scope", "openid",
    )  # fmt: skip
    query = _authorize_query(client["client_id"])
    async with httpx.AsyncClient(base_url=limited_server.url) as http:
        # A fresh client per request would be slower and no more cookie-less: httpx sends no
        # Secure cookie over plain http, so every request here arrives without one.
        answers = [await http.get("/authorize", params=query) for _ in range(FLOOD)]
        pages = [await http.get("/device") for _ in range(FLOOD)]
        prefilled = [await http.get("/device", params={"user_code": "BCDF-GHJK"}) for _ in range(FLOOD)]

    assert [a.status_code for a in answers] == [303] * LIMIT + [429] * (FLOOD - LIMIT)
    assert all(a.headers["location"].startswith("/login?request=") for a in answers[:LIMIT])
    refused = answers[LIMIT]
    assert 0 < int(refused.headers["retry-after"]) <= 180  # 180 s less the flood's own duration
    assert refused.headers["content-type"].startswith("text/html")
    assert REFUSAL in refused.text
    assert {p.status_code for p in pages + prefilled} == {200}
    assert await count_rows(settings) == {
        "browser_sessions": 0,
        "authorization_requests": LIMIT,
        "device_codes": 0,
    }


@pytest.mark.server
async def test_a_flood_of_public_device_authorizations_stores_a_bounded_number_of_codes(limited_server, settings):
    """A public client's id is no credential: hundreds of POST /device_authorization store only
    the allowance's device codes, the rest answered 429 JSON with Retry-After."""
    tv = limited_server.create_client(
        "--name", "tv", "--grant", "device_code", "--auth-method", "none",
        "--scope", "openid",
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=limited_server.url) as http:
        answers = [
            await http.post("/device_authorization", data={"client_id": tv["client_id"], "scope": "openid"})
            for _ in range(FLOOD)
        ]

    assert [a.status_code for a in answers] == [200] * LIMIT + [429] * (FLOOD - LIMIT)
    refused = answers[LIMIT]
    wait = int(refused.headers["retry-after"])
    assert 0 < wait <= 180
    assert refused.json() == {
        "error": "rate_limited",
        "error_description": f"too many requests; retry in {wait} s",
        "policy": "anonymous_requests_per_address",
        "retry_after": wait,
    }
    assert await count_rows(settings) == {"browser_sessions": 0, "authorization_requests": 0, "device_codes": LIMIT}


async def _count(ctx: ServerContext) -> dict[str, int]:
    return await count_rows(ctx.settings)


async def test_a_stranger_is_remembered_by_cookie_alone_until_sign_in(browser, spa, make_user, ctx):
    """Two tabs of a browser that has not signed in store their two pending requests and no
    session; signing in from one stores the session, which takes both requests along."""
    user = await make_user()
    _, challenge = pkce()
    first = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge, state="a")))
    second = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge, state="b")))
    stranger = await _count(ctx)

    consent = await submit(browser, first, "/login", username=user.username, password=user.password)
    done = await submit(browser, consent, "/consent", decision="approve")
    signed_in = await _count(ctx)
    other = await browser.get(f"/authorize/resume?request={hidden_fields(second.text)['request']}")

    assert 'action="/login"' in first.text
    assert 'action="/login"' in second.text
    assert stranger == {"browser_sessions": 0, "authorization_requests": 2, "device_codes": 0}
    assert query_of(done.headers["location"])["state"] == "a"
    assert signed_in == {"browser_sessions": 1, "authorization_requests": 1, "device_codes": 0}
    assert other.status_code == 303
    assert query_of(other.headers["location"])["state"] == "b"
    assert "code" in query_of(other.headers["location"])


async def test_a_forged_csrf_token_does_not_sign_in_a_provisional_session(browser, spa, make_user):
    """The login form of a browser with nothing stored still needs the CSRF token derived from its
    own cookie: another value is refused with 403."""
    user = await make_user()
    _, challenge = pkce()
    page = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))
    form = {**hidden_fields(page.text), "username": user.username, "password": user.password, "csrf_token": "x" * 64}

    refused = await browser.post("/login", data=form)

    assert refused.status_code == 403
    assert "Form expired" in refused.text
