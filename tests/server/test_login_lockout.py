"""A stranger cannot lock a user out of signing in (issue 12, item 3): device cookies, through a
real `bastion serve` on SQLite and PostgreSQL with the limiter in memory and in Redis, with
attacker and victim on distinct source addresses and the default limits.

A browser that completed a sign-in carries a device cookie for the account and is judged by its
own failures only; strangers (any browser without one) are throttled per address, per account
and address, and together per account, which can delay only untrusted browsers. The second
factor is counted apart from passwords, so strangers never block it."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest

from bastion.identity import totp
from tests import _services
from tests._live import LiveServer
from tests.conftest import make_settings
from tests.server._addresses import browser_from, new_address
from tests.server._people import CALLBACK, authorize_params, follow, hidden_fields, pkce, submit
from tests.server.test_browser_flow import PASSWORD, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.server]

DEVICE_COOKIE = "__Host-bastion-device"
THROTTLED = "Too many failed sign-in attempts. Try again in"


@pytest.fixture(params=["memory", "redis"])
def settings(request, db_url, tmp_path):
    """The default limits, with the limiter in process memory or in Redis."""
    extra: dict[str, Any] = {"redis_url": _services.need_redis()} if request.param == "redis" else {}
    return make_settings(db_url, tmp_path, **extra)


def _name(base: str) -> str:
    """A username of its own for each test: the limiter's counters live in a Redis shared by
    concurrent runs, keyed on the account name."""
    return f"{base}{secrets.token_hex(4)}"


@pytest.fixture
def alice(live_server: LiveServer) -> str:
    name = _name("alice")
    create_user(live_server, name)
    return name


@pytest.fixture
def spa(live_server: LiveServer) -> dict[str, Any]:
    return live_server.create_client(
        "--name", "Example SPA", "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", "openid profile",
    )  # fmt: skip


async def _login_page(browser: httpx.AsyncClient, spa: dict[str, Any]) -> httpx.Response:
    _, challenge = pkce()
    # prompt=login: a browser that already has a session is asked for its password again.
    params = authorize_params(spa, challenge, scope="openid profile", prompt="login")
    page = await follow(browser, await browser.get("/authorize", params=params))
    assert 'action="/login"' in page.text, page.text
    return page


async def _sign_in(browser: httpx.AsyncClient, spa: dict[str, Any], username: str, password: str) -> httpx.Response:
    """A new authorization request, then the password; the page it leads to (not followed past a 429)."""
    page = await _login_page(browser, spa)
    return await submit(browser, page, "/login", username=username, password=password)


def _signed_in(page: httpx.Response) -> bool:
    """The password was accepted: the flow went on to consent or to the second factor."""
    return page.status_code == 200 and ('action="/consent"' in page.text or 'action="/login/mfa"' in page.text)


async def _botnet(server: LiveServer, spa: dict[str, Any], username: str) -> list[int]:
    """Five addresses each try three wrong passwords for `username`; the answers, in order."""
    answers = []
    for _ in range(5):
        attacker, _jar = browser_from(server, new_address())
        async with attacker:
            for _ in range(3):
                answers.append((await _sign_in(attacker, spa, username, "wrong password!!")).status_code)
    return answers


async def test_a_botnet_cannot_lock_the_owner_out_of_her_own_browser(live_server, spa, alice):
    """While strangers at five addresses hammer alice's account (and are throttled past ten
    failures), alice signs in at once from the browser she used before; a browser she never
    used is delayed with the strangers (the documented trade-off)."""
    victim, _jar = browser_from(live_server, new_address())
    async with victim:
        first = await _sign_in(victim, spa, alice, PASSWORD)
        assert _signed_in(first), first.text

        attack = await _botnet(live_server, spa, alice)
        attacker, _jar = browser_from(live_server, new_address())
        async with attacker:
            attacker_right_guess = await _sign_in(attacker, spa, alice, PASSWORD)
        again = await _sign_in(victim, spa, alice, PASSWORD)
    new_browser, _new_jar = browser_from(live_server, new_address())
    async with new_browser:
        untrusted = await _sign_in(new_browser, spa, alice, PASSWORD)

    assert attack == [400] * 10 + [429] * 5
    assert attacker_right_guess.status_code == 429
    assert THROTTLED in attacker_right_guess.text
    assert _signed_in(again), again.text
    assert untrusted.status_code == 429


async def test_the_device_cookie_is_host_prefixed_secure_httponly_and_lax(live_server, spa, alice):
    """A completed sign-in sets `__Host-bastion-device` like the session cookie, for 90 days; a
    wrong password sets none."""
    browser, jar = browser_from(live_server, new_address())
    async with browser:
        await _sign_in(browser, spa, alice, "wrong password!!")
        after_failure = dict(jar.values)
        await _sign_in(browser, spa, alice, PASSWORD)

    assert DEVICE_COOKIE not in after_failure
    value = jar.values[DEVICE_COOKIE]
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}", value)
    assert jar.set_cookie[DEVICE_COOKIE] == (
        f"{DEVICE_COOKIE}={value}; Max-Age=7776000; Path=/; Secure; HttpOnly; SameSite=Lax"
    )


async def test_another_accounts_or_a_forged_device_cookie_earns_no_trust(live_server, spa, alice):
    """Mallory's own device cookie, or an altered copy of alice's, does not make Mallory's
    attempts at alice's account trusted: three wrong passwords, then 429 from her address."""
    mallory_name = _name("mallory")
    create_user(live_server, mallory_name)
    alices_browser, alice_jar = browser_from(live_server, new_address())
    async with alices_browser:
        assert _signed_in(await _sign_in(alices_browser, spa, alice, PASSWORD))
    nonce_swapped = re.sub(r"^v1\.[^.]+\.", "v1." + "A" * 22 + ".", alice_jar.values[DEVICE_COOKIE])
    answers = {}
    for name, cookie in (("own", None), ("forged", nonce_swapped)):
        mallory, jar = browser_from(live_server, new_address())
        async with mallory:
            assert _signed_in(await _sign_in(mallory, spa, mallory_name, PASSWORD))
            if cookie is not None:
                jar.values[DEVICE_COOKIE] = cookie
            answers[name] = [(await _sign_in(mallory, spa, alice, "wrong password!!")).status_code for _ in range(4)]

    assert answers == {"own": [400, 400, 400, 429], "forged": [400, 400, 400, 429]}


async def test_a_trusted_browser_is_judged_by_its_own_failures(live_server, spa, alice):
    """Alice's own browser may fail ten times before it is delayed, and those failures do not
    count against her account: another browser of hers still signs in."""
    trusted, _jar = browser_from(live_server, new_address())
    async with trusted:
        assert _signed_in(await _sign_in(trusted, spa, alice, PASSWORD))
        own = [(await _sign_in(trusted, spa, alice, "wrong password!!")).status_code for _ in range(11)]
    other, _other_jar = browser_from(live_server, new_address())
    async with other:
        elsewhere = await _sign_in(other, spa, alice, PASSWORD)

    assert own == [400] * 10 + [429]
    assert _signed_in(elsewhere), elsewhere.text


async def _enrolled_admin(server: LiveServer, spa: dict[str, Any]) -> tuple[str, list[str]]:
    """Create an admin (who must use a second factor) and enrol TOTP; the name and recovery codes."""
    root = _name("root")
    create_user(server, root, "admin")
    browser, _jar = browser_from(server, new_address())
    async with browser:
        enrol = await _sign_in(browser, spa, root, PASSWORD)
        secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', enrol.text)
        assert secret is not None, enrol.text
        codes = await submit(browser, enrol, "/mfa/enrol", code=totp.current_code(secret.group(1)))
    recovery = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", codes.text)
    assert len(recovery) == 10, codes.text
    return root, recovery


async def test_strangers_cannot_block_the_second_factor(live_server, spa):
    """Root has given the password on a new browser and reached the second factor; strangers at
    five addresses then hammer root's password until they are throttled; root's code is still
    accepted, and the sign-in completes."""
    root, recovery = await _enrolled_admin(live_server, spa)
    browser, _jar = browser_from(live_server, new_address())
    async with browser:
        second_factor = await _sign_in(browser, spa, root, PASSWORD)
        assert 'action="/login/mfa"' in second_factor.text, second_factor.text

        attack = await _botnet(live_server, spa, root)
        done = await browser.post("/login/mfa", data={**hidden_fields(second_factor.text), "code": recovery[0]})

    assert attack == [400] * 10 + [429] * 5
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/")


async def test_wrong_second_factor_codes_are_throttled_per_account(live_server, spa):
    """Someone who knows the password but not the code is stopped after ten wrong codes."""
    root, _recovery = await _enrolled_admin(live_server, spa)
    answers = []
    for _ in range(3):
        browser, _jar = browser_from(live_server, new_address())
        async with browser:
            page = await _sign_in(browser, spa, root, PASSWORD)
            assert 'action="/login/mfa"' in page.text, page.text
            for _ in range(4):
                answer = await browser.post("/login/mfa", data={**hidden_fields(page.text), "code": "000000"})
                answers.append(answer.status_code)

    assert answers == [400] * 10 + [429] * 2
    assert THROTTLED in answer.text
