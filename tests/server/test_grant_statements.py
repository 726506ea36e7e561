"""The SQL statements a grant costs, counted at the driver on SQLite and PostgreSQL (issue 13):
a refresh, a whole authorization of a signed-in user who has consented (`/authorize`, then the
code exchange), and what a request that needs a page still stores.

Client and key caches are on, as they are by default, and warmed: what is counted is what every
grant pays. A count going up is a change to look at, not a failure to wave through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.config import Settings
from bastion.server.context import ServerContext
from tests._statements import counting, kinds
from tests.conftest import make_settings
from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import CALLBACK, authorize_params, exchange, pkce, query_of, refresh, tokens_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Production's caches of clients and keys (tests elsewhere turn them off)."""
    return make_settings(db_url, tmp_path, password_hashing="testing", client_cache_seconds=10, key_cache_seconds=10)


async def _statements(ctx: ServerContext, work: Callable[[], Awaitable[httpx.Response]]) -> tuple[list[str], Any]:
    async with counting(ctx.database) as seen:
        answer = await work()
    return kinds(seen), answer


def _on(ctx: ServerContext, *, sqlite: list[str], postgresql: list[str]) -> list[str]:
    """The expected statements on this database (sqlite3 wraps a lone write in BEGIN/COMMIT)."""
    return sqlite if ctx.database.is_sqlite else postgresql


async def test_a_refresh_is_one_statement(browser, http, spa, make_user, ctx):
    """A refresh spends the token, stores its successor and reads the user in one statement on
    PostgreSQL (one transaction on SQLite)."""
    tokens = await tokens_for(browser, http, spa, await make_user())

    seen, answer = await _statements(ctx, lambda: refresh(http, spa, tokens["refresh_token"]))

    assert answer.status_code == 200, answer.text
    assert seen == _on(ctx, sqlite=["BEGIN", "UPDATE", "INSERT", "SELECT", "COMMIT"], postgresql=["WITH"])


async def test_a_narrowing_refresh_reads_the_token_first(browser, http, spa, make_user, ctx):
    """A refresh that narrows the scope reads the token before it spends it (RFC 6749 §6)."""
    tokens = await tokens_for(browser, http, spa, await make_user())

    seen, answer = await _statements(ctx, lambda: refresh(http, spa, tokens["refresh_token"], scope="openid"))

    assert answer.status_code == 200, answer.text
    spend = ["BEGIN", "UPDATE", "INSERT", "SELECT", "COMMIT"]
    assert seen == _on(ctx, sqlite=["SELECT", *spend], postgresql=["SELECT", "WITH"])


async def test_an_authorization_of_a_signed_in_user_who_consented_is_four_statements(
    browser, http, spa, make_user, ctx
):
    """`/authorize` for a signed-in user who has consented reads the session, user and consent in
    one statement and stores the code (no pending request); the exchange reads the code and
    spends it with its refresh token: four statements on PostgreSQL."""
    await tokens_for(browser, http, spa, await make_user())  # signs in, consents, warms the caches
    verifier, challenge = pkce()

    params = authorize_params(spa, challenge)

    authorized, answer = await _statements(ctx, lambda: browser.get("/authorize", params=params))
    assert answer.headers["location"].startswith(CALLBACK + "?code="), answer.text
    code = query_of(answer.headers["location"])["code"]
    exchanged, tokens = await _statements(ctx, lambda: exchange(http, spa, code, verifier))

    assert tokens.status_code == 200, tokens.text
    assert authorized == _on(ctx, sqlite=["SELECT", "BEGIN", "INSERT", "COMMIT"], postgresql=["SELECT", "INSERT"])
    spend = ["BEGIN", "UPDATE", "INSERT", "COMMIT"]
    assert exchanged == _on(ctx, sqlite=["SELECT", *spend], postgresql=["SELECT", "WITH"])


async def test_a_request_that_needs_a_page_is_stored_before_the_page(browser, spa, make_user, ctx):
    """A request that a page continues (here, consent for a new scope) is stored before the
    browser is sent there, and the page finds it."""
    await tokens_for(browser, browser, spa, await make_user(), scope="openid offline_access")
    _, challenge = pkce()
    params = authorize_params(spa, challenge, scope="openid email offline_access")

    seen, answer = await _statements(ctx, lambda: browser.get("/authorize", params=params))

    assert answer.headers["location"].startswith("/consent?request="), answer.text
    assert seen == _on(ctx, sqlite=["SELECT", "BEGIN", "INSERT", "COMMIT"], postgresql=["SELECT", "INSERT"])
    page = await browser.get(answer.headers["location"])
    assert page.status_code == 200
    assert 'action="/consent"' in page.text
