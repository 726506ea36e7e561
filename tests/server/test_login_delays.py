"""Failed logins meet delays that grow with the failures, then a temporary lock (issue 3),
for a browser without a device cookie for the account (existing or not), on both databases. The
policies are shortened here so that the short delay can be waited out; the defaults are 3 a
minute per account and address, then 10 per 15 minutes per account."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import make_settings
from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import authorize_params, follow, hidden_fields, pkce

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(
        db_url,
        tmp_path,
        password_hashing="testing",
        ratelimit={
            "policies": {
                "login_failures_per_account_address": {"limit": "3/3seconds"},
                "login_failures_per_account": {"limit": "5/15minutes"},
            }
        },
    )


async def _attempt(browser, form, username, password):
    return await browser.post("/login", data={**form, "username": username, "password": password})


@pytest.mark.parametrize("username", [pytest.param("alice", id="existing"), pytest.param("mallory", id="unknown")])
async def test_delays_grow_from_seconds_to_a_temporary_lock(browser, spa, make_user, username):
    user = await make_user()
    _, challenge = pkce()
    page = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))
    form = hidden_fields(page.text)

    free = [(await _attempt(browser, form, username, "wrong password!!")).status_code for _ in range(3)]
    delayed = await _attempt(browser, form, username, user.password)

    assert free == [400, 400, 400]
    assert delayed.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 1 second." in delayed.text
    assert "Wrong username or password" not in delayed.text

    # The short delay passes (one attempt a second now); the failures still count toward the lock.
    await asyncio.sleep(1.1)
    assert (await _attempt(browser, form, username, "wrong password!!")).status_code == 400
    await asyncio.sleep(1.1)
    assert (await _attempt(browser, form, username, "wrong password!!")).status_code == 400
    await asyncio.sleep(1.1)
    locked = await _attempt(browser, form, username, user.password)

    assert locked.status_code == 429
    assert "Try again in 3 minutes." in locked.text
