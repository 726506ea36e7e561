"""Sign-ins by outcome in /metrics, through a real `bastion serve` on SQLite and PostgreSQL with
the limiter in memory and in Redis: a wrong password counts as failed, the right one as
succeeded, and an account that must give a second factor as second_factor_required."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests import _services
from tests._live import LiveServer
from tests.conftest import make_settings
from tests.server._addresses import browser_from, new_address
from tests.server._metrics import scrape, value
from tests.server._people import CALLBACK, authorize_params, follow, pkce, submit
from tests.server.test_browser_flow import PASSWORD, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.server]


@pytest.fixture(params=["memory", "redis"])
def settings(request, db_url, tmp_path):
    extra: dict[str, Any] = {"redis_url": _services.need_redis()} if request.param == "redis" else {}
    return make_settings(db_url, tmp_path, **extra)


@pytest.fixture
def spa(live_server: LiveServer) -> dict[str, Any]:
    return live_server.create_client(
        "--name", "Example SPA", "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", "openid profile",
    )  # fmt: skip


async def _sign_in(browser: httpx.AsyncClient, spa: dict[str, Any], username: str, password: str) -> httpx.Response:
    _, challenge = pkce()
    params = authorize_params(spa, challenge, scope="openid profile")
    page = await follow(browser, await browser.get("/authorize", params=params))
    assert 'action="/login"' in page.text, page.text
    return await submit(browser, page, "/login", username=username, password=password)


async def test_logins_are_counted_by_outcome(live_server, spa):
    """One wrong password, one right one, and an admin's right password (a second factor is
    due) count as failed 1, succeeded 1, second_factor_required 1."""
    alice, root = f"alice{secrets.token_hex(4)}", f"root{secrets.token_hex(4)}"
    create_user(live_server, alice)
    create_user(live_server, root, "admin")
    browser, _jar = browser_from(live_server, new_address())
    async with browser:
        wrong = await _sign_in(browser, spa, alice, "wrong password!!")
        right = await _sign_in(browser, spa, alice, PASSWORD)
    admin, _admin_jar = browser_from(live_server, new_address())
    async with admin:
        second = await _sign_in(admin, spa, root, PASSWORD)
    samples = scrape(live_server)

    assert wrong.status_code == 400
    assert 'action="/consent"' in right.text, right.text
    assert 'action="/mfa/enrol"' in second.text or 'action="/login/mfa"' in second.text, second.text
    assert {
        outcome: value(samples, "bastion_logins_total", outcome=outcome)
        for outcome in ("failed", "succeeded", "second_factor_required", "throttled")
    } == {"failed": 1, "succeeded": 1, "second_factor_required": 1, "throttled": 0}
