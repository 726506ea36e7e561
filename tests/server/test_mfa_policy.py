"""The MFA policy beyond the browser walk-throughs: discovery lists the `acr` values a client may
ask for; `bastion users set-mfa` marks a user (both databases) and a session signed in with the
password alone is then sent back to login; and "Not now" on an enrolment that is required (not
merely offered) is refused, through a real `bastion serve`."""

from __future__ import annotations

import json

import pytest

from bastion.protocol.oidc import ACR_MFA, ACR_PASSWORD
from tests.server._people import CALLBACK, authorize_params, follow, hidden_fields, pkce, submit
from tests.server.test_browser_flow import PASSWORD
from tests.server.test_page_request_kinds import TwoRequests, two_requests  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.server]


async def test_discovery_lists_the_acr_values(http):
    """OpenID Connect Discovery 1.0 §3: acr_values_supported names the password and MFA classes."""
    document = (await http.get("/.well-known/openid-configuration")).json()

    assert document["acr_values_supported"] == [ACR_PASSWORD, ACR_MFA]


async def test_set_mfa_marks_the_user_and_sends_a_password_session_to_login(two_requests):  # noqa: F811
    """`users set-mfa alice required` marks her (shown by `users show`); her session signed in with
    the password alone is then sent to login by /consent and /device/consent; `default` unmarks."""
    flows = two_requests
    marked = flows.server.cli("users", "set-mfa", "alice", "required", "--json")
    consent, device = flows.request_id(flows.consent), flows.request_id(flows.device_consent)

    posted = await flows.browser.post("/consent", data=flows.form(flows.consent, decision="approve"))
    approved = await flows.browser.post("/device/consent", data=flows.form(flows.device_consent, decision="approve"))
    unmarked = flows.server.cli("users", "set-mfa", "alice", "default", "--json")
    shown = flows.server.cli("users", "show", "alice", "--json")

    assert marked.returncode == 0, marked.stderr
    assert json.loads(marked.stdout)["require_mfa"] is True
    assert (posted.status_code, posted.headers["location"]) == (303, f"/login?request={consent}")
    assert (approved.status_code, approved.headers["location"]) == (303, f"/login?request={device}")
    assert "authorization_code_issued" not in flows.audit_events()
    assert json.loads(unmarked.stdout)["require_mfa"] is False
    assert json.loads(shown.stdout)["require_mfa"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("nobody", "required"), "error: no user nobody", id="unknown-user"),
        pytest.param(("alice", "sometimes"), "'sometimes' is not one of", id="unknown-requirement"),
    ],
)
async def test_set_mfa_refuses_bad_input(two_requests, args, message):  # noqa: F811
    """An unknown user or requirement: exit 2 with the reason, no traceback."""
    result = two_requests.server.cli("users", "set-mfa", *args)

    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_declining_a_required_enrolment_is_refused(two_requests):  # noqa: F811
    """A request with acr_values=mfa sends alice (no factor) to enrolment without "Not now"; a
    forged "Not now" gets the 400 page saying a second factor is needed, and no code."""
    flows = two_requests
    _, challenge = pkce()
    params = authorize_params(flows.spa, challenge, acr_values=ACR_MFA, prompt="login")
    login = await follow(flows.browser, await flows.browser.get("/authorize", params=params))
    enrolment = await submit(flows.browser, login, "/login", username="alice", password=PASSWORD)
    form = hidden_fields(enrolment.text)

    declined = await flows.browser.post(
        "/mfa/enrol", data={"csrf_token": form["csrf_token"], "request": form["request"], "skip": "skip"}
    )

    assert 'action="/mfa/enrol"' in enrolment.text, enrolment.text
    assert 'name="skip"' not in enrolment.text
    assert declined.status_code == 400
    assert "This sign-in needs a second factor." in declined.text
    assert not declined.headers.get("location", "").startswith(CALLBACK)
    assert "authorization_code_issued" not in flows.audit_events()
