"""Login throttling, TOTP enrolment and verification, recovery codes, logout (issue 3), both databases."""

from __future__ import annotations

import jwt
import pytest

from bastion.identity import totp
from tests.conftest import make_settings
from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import (
    CALLBACK,
    LOGGED_OUT,
    authorize,
    authorize_params,
    exchange,
    follow,
    hidden_fields,
    pkce,
    submit,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(db_url, tmp_path):
    """Cheap hashing, and login limits small enough to reach in a test."""
    return make_settings(
        db_url,
        tmp_path,
        password_hashing="testing",
        ratelimit={
            "policies": {
                "login_failures_per_account": {"limit": "3/15minutes"},
                "login_failures_per_address": {"limit": "5/15minutes"},
            }
        },
    )


async def _login_page(browser, spa):
    _, challenge = pkce()
    return await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))


@pytest.mark.parametrize("username", [pytest.param("alice", id="existing"), pytest.param("mallory", id="unknown")])
async def test_failed_logins_are_throttled_per_account(browser, spa, make_user, username):
    """After the account's failure limit the login page answers 429 with a delay, the same for unknown accounts."""
    user = await make_user()
    page = await _login_page(browser, spa)
    form = hidden_fields(page.text)
    for _ in range(3):
        wrong = await browser.post("/login", data={**form, "username": username, "password": "wrong password!!"})
        assert wrong.status_code == 400

    throttled = await browser.post("/login", data={**form, "username": username, "password": user.password})

    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts. Try again in" in throttled.text
    assert "Wrong username or password" not in throttled.text


async def test_failed_logins_are_throttled_per_address(browser, spa, make_user):
    """Failures across many account names from one address hit the per-address limit."""
    await make_user()
    page = await _login_page(browser, spa)
    form = hidden_fields(page.text)
    for index in range(5):
        await browser.post("/login", data={**form, "username": f"user{index}", "password": "wrong password!!"})

    throttled = await browser.post("/login", data={**form, "username": "someone-new", "password": "x" * 12})

    assert throttled.status_code == 429


async def test_admin_role_must_enrol_totp_with_qr_code(browser, spa, make_user):
    """A user whose role requires MFA is taken to TOTP enrolment, which shows an inline SVG QR code."""
    user = await make_user(roles=("admin",))
    page = await _login_page(browser, spa)

    enrol = await submit(browser, page, "/login", username=user.username, password=user.password)

    assert enrol.status_code == 200
    assert 'action="/mfa/enrol"' in enrol.text
    assert "<svg" in enrol.text
    assert "<script" not in enrol.text


async def test_totp_flow_sets_amr_and_acr_and_codes_are_single_use(browser, http, spa, make_user):
    """Enrolment then login with TOTP yields amr [pwd, otp, mfa] and acr mfa; a used code is refused."""
    user = await make_user(roles=("admin",))
    first = await authorize(browser, spa, user)
    assert "code" in first.params, first.response.text
    assert len(user.extra["recovery_codes"]) == 10
    tokens = (await exchange(http, spa, first.params["code"], first.verifier)).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "urn:bastion:acr:mfa"

    browser.cookies.clear()
    page = await _login_page(browser, spa)
    mfa = await submit(browser, page, "/login", username=user.username, password=user.password)
    assert 'action="/login/mfa"' in mfa.text
    # The enrolment already used the current step: the same code is a replay.
    replayed = await submit(browser, mfa, "/login/mfa", code=totp.current_code(user.totp_secret))

    assert replayed.status_code == 400
    assert "not valid (or was already used)" in replayed.text


async def test_recovery_code_works_once(browser, spa, make_user):
    """A recovery code completes the second factor once; the same code is refused after."""
    user = await make_user(roles=("admin",))
    await authorize(browser, spa, user)
    code = user.extra["recovery_codes"][0]

    outcomes = []
    for _ in range(2):
        browser.cookies.clear()
        page = await _login_page(browser, spa)
        mfa = await submit(browser, page, "/login", username=user.username, password=user.password)
        outcomes.append(await submit(browser, mfa, "/login/mfa", code=code))

    assert outcomes[0].status_code == 303
    assert outcomes[0].headers["location"].startswith(CALLBACK)
    assert outcomes[1].status_code == 400


async def test_mfa_page_needs_password_first(browser, spa):
    """The second-factor page is not reachable without the first factor."""
    page = await _login_page(browser, spa)
    form = hidden_fields(page.text)

    response = await browser.get(f"/login/mfa?request={form['request']}")

    assert response.status_code == 400


async def test_logout_ends_session_and_redirects_to_registered_uri(browser, http, spa, make_user):
    """RP-initiated logout with id_token_hint ends the session and redirects to a registered URI with state."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)
    tokens = (await exchange(http, spa, outcome.params["code"], outcome.verifier)).json()
    confirm = await browser.get(
        "/logout",
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGGED_OUT, "state": "bye"},
    )
    assert confirm.status_code == 200

    done = await submit(browser, confirm, "/logout")

    assert done.status_code == 303
    assert done.headers["location"] == LOGGED_OUT + "?state=bye"
    again = await authorize(browser, spa, None, prompt="none", state="s")
    assert again.params["error"] == "login_required"


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("https://evil.example/", id="unregistered"),
        pytest.param(CALLBACK, id="authorization-redirect-uri"),
        pytest.param(LOGGED_OUT + "/", id="not-exact"),
        pytest.param(LOGGED_OUT + "?x=1", id="extra-query"),
    ],
)
async def test_logout_refuses_unregistered_post_logout_uri(browser, http, spa, make_user, uri):
    """A URI that is not one of the client's registered post-logout URIs (its redirect URIs do not
    count; matching is exact) is an error page, never a redirect."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)
    tokens = (await exchange(http, spa, outcome.params["code"], outcome.verifier)).json()

    response = await browser.get(
        "/logout",
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri},
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Invalid logout request" in response.text
    assert "The post_logout_redirect_uri is not registered for this client." in response.text


async def test_logout_form_with_unregistered_uri_signs_out_without_redirect(browser, spa, make_user):
    """A confirmation form altered to carry a redirect URI that is not a post-logout URI ends the
    session on the signed-out page and redirects nowhere."""
    user = await make_user()
    await authorize(browser, spa, user)
    confirm = await browser.get("/logout", params={"client_id": spa["client_id"]})
    assert confirm.status_code == 200

    done = await submit(browser, confirm, "/logout", post_logout_redirect_uri=CALLBACK, client_id=spa["client_id"])

    assert done.status_code == 200
    assert "location" not in done.headers
    again = await authorize(browser, spa, None, prompt="none", state="s")
    assert again.params["error"] == "login_required"


async def test_logout_without_csrf_token_is_refused(browser, spa, make_user):
    """The logout form needs the session's CSRF token."""
    user = await make_user()
    await authorize(browser, spa, user)

    response = await browser.post("/logout", data={"post_logout_redirect_uri": ""})

    assert response.status_code == 403


async def test_login_rehashes_password_made_with_other_parameters(browser, spa, make_user, ctx):
    """A stored hash at other Argon2id parameters is replaced at the next successful login."""
    from bastion.identity import users
    from bastion.identity.passwords import PasswordHasher

    user = await make_user()
    strong = PasswordHasher("owasp")
    try:
        await users.store_password_hash(ctx.database, user.sub, await strong.hash(user.password))
    finally:
        strong.close()

    outcome = await authorize(browser, spa, user)

    assert "code" in outcome.params
    stored = (await users.get_user(ctx.database, user.sub)).password_hash
    assert stored.startswith("$argon2id$v=19$m=64,t=1,p=1$")


async def test_disabled_user_cannot_log_in(browser, spa, make_user, ctx):
    """A disabled user gets the same generic failure as a wrong password."""
    from bastion.identity import users

    user = await make_user()
    await users.set_enabled(ctx.database, user.username, False)

    outcome = await authorize(browser, spa, user)

    assert outcome.response.status_code == 400
    assert "Wrong username or password." in outcome.response.text


async def test_idle_session_expires(browser, spa, make_user, ctx, settings):
    """A session unused for longer than session_idle_lifetime is gone: prompt=none says login_required."""
    from bastion.store.models import browser_sessions

    user = await make_user()
    await authorize(browser, spa, user)
    async with ctx.database.engine.begin() as conn:
        await conn.execute(
            browser_sessions.update().values(
                last_seen_at=browser_sessions.c.last_seen_at - settings.session_idle_lifetime
            )
        )

    outcome = await authorize(browser, spa, None, prompt="none", state="s")

    assert outcome.params["error"] == "login_required"


async def _last_seen(ctx) -> int:
    from sqlalchemy import select

    from bastion.store.models import browser_sessions

    async with ctx.database.engine.connect() as conn:
        return int((await conn.execute(select(browser_sessions.c.last_seen_at))).scalar_one())


async def test_session_use_is_recorded_once_a_touch_interval_has_passed(browser, spa, make_user, ctx, settings):
    """A page load writes the session's last use when the stored one is touch_every seconds old
    (so an active session never idles out), and not on every load."""
    assert settings.session_idle_lifetime >= 200  # touch_every >= 10: the second half is not racing the clock
    from bastion.identity.sessions import Timeouts
    from bastion.store.models import browser_sessions

    every = Timeouts(settings.session_idle_lifetime, settings.session_absolute_lifetime).touch_every
    user = await make_user()
    await authorize(browser, spa, user)
    fresh = await _last_seen(ctx)
    async with ctx.database.engine.begin() as conn:
        await conn.execute(browser_sessions.update().values(last_seen_at=browser_sessions.c.last_seen_at - every))

    await authorize(browser, spa, None, prompt="none", state="s")
    assert await _last_seen(ctx) >= fresh

    async with ctx.database.engine.begin() as conn:
        await conn.execute(
            browser_sessions.update().values(last_seen_at=browser_sessions.c.last_seen_at - every // 2)
        )
    held = await _last_seen(ctx)
    outcome = await authorize(browser, spa, None, prompt="none", state="s")
    assert "code" in outcome.params
    assert await _last_seen(ctx) == held


async def test_client_can_require_mfa_with_acr_values(browser, http, spa, make_user):
    """A client that sends acr_values=urn:bastion:acr:mfa gets a second factor (step-up from a password session)."""
    user = await make_user()
    plain = await authorize(browser, spa, user, scope="openid")
    assert "code" in plain.params
    stepped_up = await authorize(browser, spa, None, scope="openid", acr_values="urn:bastion:acr:mfa", consent=None)
    assert 'action="/login"' in stepped_up.response.text

    outcome = await authorize(browser, spa, user, scope="openid", acr_values="urn:bastion:acr:mfa")

    assert "code" in outcome.params, outcome.response.text
    assert user.totp_secret is not None
    tokens = (await exchange(http, spa, outcome.params["code"], outcome.verifier)).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["acr"] == "urn:bastion:acr:mfa"
    assert claims["amr"] == ["pwd", "otp", "mfa"]


async def test_two_tabs_approving_at_once_both_get_codes(http, spa, make_user, ctx, settings):
    """Consent approved in two tabs at the same moment: both requests finish with a code and the
    consent holds the union of the scopes (no duplicate-key error from the second approval)."""
    import asyncio

    import httpx

    from bastion.server import create_app
    from bastion.store import consents
    from tests.server._people import BROWSER_BASE, hidden_fields

    user = await make_user()
    app = create_app(settings, ctx)
    tabs = []
    for scope in ("openid profile", "openid email"):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
        tab = httpx.AsyncClient(transport=transport, base_url=BROWSER_BASE)
        _verifier, challenge = pkce()
        page = await follow(tab, await tab.get("/authorize", params=authorize_params(spa, challenge, scope=scope)))
        page = await submit(tab, page, "/login", username=user.username, password=user.password)
        assert 'action="/consent"' in page.text
        tabs.append((tab, page))

    async def approve(tab: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
        return await tab.post("/consent", data={**hidden_fields(page.text), "decision": "approve"})

    answers = await asyncio.gather(*(approve(tab, page) for tab, page in tabs))
    for tab, _ in tabs:
        await tab.aclose()

    assert [a.status_code for a in answers] == [303, 303]
    assert all("code=" in a.headers["location"] for a in answers)
    granted = await consents.user_and_consent(ctx.database, user.sub, spa["client_id"])
    assert granted[1] == {"openid", "profile", "email"}
