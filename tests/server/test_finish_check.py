"""One check before a code or an approved device (`flow.check_finish`), attacked through a real
`bastion serve` on SQLite and PostgreSQL: a signed-in browser session that posts the consent
(or the device approval) form straight away, for a request that asks to sign in again
(prompt=login, max_age=0), for a second factor (acr_values), or after the account changed
(a role that requires a second factor, disabled) or the session ended, gets no code and no
approved device: it is sent to the login page of the request, or told that its session expired.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from bastion.protocol.oidc import ACR_MFA
from bastion.server import flow
from bastion.server.browser import BrowserSession
from bastion.store import Database
from tests.server._device import poll
from tests.server._people import CALLBACK, authorize_params, follow, hidden_fields, pkce, submit
from tests.server.test_browser_flow import PASSWORD
from tests.server.test_page_request_kinds import TwoRequests, two_requests  # noqa: F401 - the fixture
from tests.store._rows import pending_request

pytestmark = [pytest.mark.anyio, pytest.mark.server]

COOKIE = "__Host-bastion-session"


async def _execute(flows: TwoRequests, statement: str) -> None:
    """A write to the server's database (what an operator's change, or time, does to a row)."""
    database = Database(flows.server.env["BASTION_DATABASE_URL"], pool_size=1)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await database.dispose()


async def _nothing_issued(flows: TwoRequests) -> None:
    events = flows.audit_events()
    assert "authorization_code_issued" not in events
    assert "device_approved" not in events
    assert (await poll(flows.http, flows.tv, flows.device_code)).json()["error"] == "authorization_pending"


@pytest.mark.parametrize(
    "asks",
    [
        pytest.param({"prompt": "login"}, id="prompt-login"),
        pytest.param({"max_age": "0"}, id="max-age-0"),
        pytest.param({"acr_values": ACR_MFA}, id="acr-values-mfa"),
    ],
)
async def test_consent_for_a_request_that_asks_to_sign_in_sends_to_login(two_requests, asks):  # noqa: F811
    """A request asking to sign in again or for a second factor, posted to (or shown at) /consent
    by the signed-in session, goes to its login page: no code."""
    flows = two_requests
    login = await follow(flows.browser, await flows.browser.get("/authorize", params=_params(flows, **asks)))
    assert 'action="/login"' in login.text, login.text
    request = hidden_fields(login.text)["request"]

    posted = await flows.browser.post("/consent", data=flows.form(flows.consent, request=request, decision="approve"))
    shown = await flows.browser.get(f"/consent?request={request}")

    for answer in (posted, shown):
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?request={request}"
    await _nothing_issued(flows)


def _params(flows: TwoRequests, **asks: str) -> dict[str, str]:
    _, challenge = pkce()
    return authorize_params(flows.spa, challenge, **asks)


async def test_prompt_login_sent_to_login_finishes_after_the_password(two_requests):  # noqa: F811
    """The prompt=login request refused at /consent finishes once the password is given again."""
    flows = two_requests
    login = await follow(flows.browser, await flows.browser.get("/authorize", params=_params(flows, prompt="login")))
    request = hidden_fields(login.text)["request"]
    refused = await flows.browser.post("/consent", data=flows.form(flows.consent, request=request, decision="approve"))
    page = await follow(flows.browser, refused)

    consent = await submit(flows.browser, page, "/login", username="alice", password=PASSWORD)
    issued = await flows.browser.post("/consent", data=flows.form(consent, decision="approve"))

    assert issued.status_code == 303
    assert issued.headers["location"].startswith(CALLBACK + "?code=")


async def test_approval_after_a_role_requires_mfa_sends_to_login(two_requests):  # noqa: F811
    """Once the account gets a role that requires a second factor, a session signed in with the
    password alone is sent to login by /consent and /device/consent: no code, no approval."""
    flows = two_requests
    await _execute(flows, "UPDATE users SET roles = 'admin' WHERE username = 'alice'")
    consent = flows.request_id(flows.consent)
    device = flows.request_id(flows.device_consent)

    posted = await flows.browser.post("/consent", data=flows.form(flows.consent, decision="approve"))
    approved = await flows.browser.post("/device/consent", data=flows.form(flows.device_consent, decision="approve"))

    assert (posted.status_code, posted.headers["location"]) == (303, f"/login?request={consent}")
    assert (approved.status_code, approved.headers["location"]) == (303, f"/login?request={device}")
    await _nothing_issued(flows)


async def _disable(flows: TwoRequests) -> None:
    result = flows.server.cli("users", "disable", "alice")
    assert result.returncode == 0, result.stderr


async def _log_out(flows: TwoRequests) -> None:
    cookie = flows.browser.headers["cookie"]
    form = hidden_fields((await flows.browser.get("/logout")).text)
    assert (await flows.browser.post("/logout", data=form)).status_code == 200
    flows.browser.headers["cookie"] = cookie  # the old cookie, replayed


async def _expire(flows: TwoRequests) -> None:
    await _execute(flows, "UPDATE browser_sessions SET expires_at = 0")


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(_disable, id="user-disabled"),
        pytest.param(_log_out, id="session-ended"),
        pytest.param(_expire, id="session-expired"),
    ],
)
async def test_approval_from_a_dead_session_issues_nothing(two_requests, end):  # noqa: F811
    """After the user is disabled, or the session ended or expired, the forms posted with its
    cookie and CSRF token get the expired pages: no code, no approval."""
    flows = two_requests
    await end(flows)

    posted = await flows.browser.post("/consent", data=flows.form(flows.consent, decision="approve"))
    approved = await flows.browser.post("/device/consent", data=flows.form(flows.device_consent, decision="approve"))

    assert (posted.status_code, "Session expired" in posted.text) == (400, True)
    assert (approved.status_code, "Code expired" in approved.text) == (400, True)
    await _nothing_issued(flows)


def test_a_finish_is_made_only_by_the_check():
    """A Finish (what issue_code and approve_device take) made outside check_finish, or copied
    onto another request, session or user, or marked as a request never stored, is refused with
    TypeError."""
    browser = BrowserSession("hash", "sid", "sub", "authenticated", ("pwd",), 1, "csrf")
    pending, other = pending_request("request", "hash"), pending_request("other", "hash")
    fields = {"client": None, "user": None, "sub": "sub", "auth_time": 1, "granted": frozenset(), "stored": True}
    checked = flow.Finish(browser, pending, seal=flow._seal_of(browser, pending, "sub", True), **fields)

    refusals = [
        lambda: flow.Finish(browser, pending, seal=(object(), "hash", "request", "sub", True), **fields),
        lambda: replace(checked, pending=other),
        lambda: replace(checked, browser=replace(browser, id_hash="another")),
        lambda: replace(checked, sub="someone-else"),
        lambda: replace(checked, stored=False),  # a stored request's Finish cannot skip taking it
    ]

    for refused in refusals:
        with pytest.raises(TypeError, match=r"a Finish is made only by flow\.check_finish"):
            refused()
