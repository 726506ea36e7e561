"""A client registered with `--require-mfa` gets a code or an approved device only from a session
that signed in with a second factor, attacked through a real `bastion serve` on SQLite and
PostgreSQL: a session signed in with the password alone (no second factor enrolled, as the
acr_values tests) that posts the consent or device approval form straight away is sent to the
request's login page, prompt=none gets login_required, and the login page asks for the second
factor (enrolment first) before the code."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from bastion.protocol.oidc import ACR_MFA
from tests.server._device import DEVICE_SCOPE, poll, started
from tests.server._people import (
    CALLBACK,
    Person,
    authorize,
    authorize_params,
    exchange,
    follow,
    hidden_fields,
    pkce,
    query_of,
    submit,
)
from tests.server.test_browser_flow import PASSWORD
from tests.server.test_page_request_kinds import TwoRequests, two_requests  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.server]


def _strict(flows: TwoRequests, *grant: str) -> dict[str, Any]:
    """A public client registered with --require-mfa."""
    return flows.server.create_client("--name", "Strict", "--auth-method", "none", "--require-mfa", *grant)


def _strict_spa(flows: TwoRequests) -> dict[str, Any]:
    return _strict(
        flows, "--grant", "authorization_code", "--redirect-uri", CALLBACK, "--scope", "openid profile email"
    )


def _params(client: dict[str, Any], **asks: str) -> dict[str, str]:
    _, challenge = pkce()
    return authorize_params(client, challenge, scope="openid profile", **asks)


async def test_consent_for_a_require_mfa_client_from_a_password_session_sends_to_login(two_requests):  # noqa: F811
    """The password-only session's request for a --require-mfa client, posted to (or shown at)
    /consent with its id and CSRF token, goes to its login page, which asks for the second
    factor (enrolment, as for acr_values): no code."""
    flows = two_requests
    strict = _strict_spa(flows)
    reached = await follow(flows.browser, await flows.browser.get("/authorize", params=_params(strict)))
    request = hidden_fields(reached.text)["request"]

    posted = await flows.browser.post("/consent", data=flows.form(flows.consent, request=request, decision="approve"))
    shown = await flows.browser.get(f"/consent?request={request}")

    for answer in (posted, shown):
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?request={request}"
    assert "authorization_code_issued" not in flows.audit_events()
    assert 'action="/login"' in reached.text, reached.text
    second = await submit(
        flows.browser, await follow(flows.browser, posted), "/login", username="alice", password=PASSWORD
    )
    assert 'action="/mfa/enrol"' in second.text, second.text


async def test_prompt_none_for_a_require_mfa_client_from_a_password_session_is_login_required(two_requests):  # noqa: F811
    """prompt=none from the password-only session gets login_required, as acr_values=mfa does."""
    flows = two_requests
    strict = _strict_spa(flows)

    answers = [
        await flows.browser.get("/authorize", params=_params(client, prompt="none", **asks))
        for client, asks in ((strict, {}), (flows.spa, {"acr_values": ACR_MFA}))
    ]

    for answer in answers:
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(CALLBACK + "?")
        assert query_of(answer.headers["location"])["error"] == "login_required"
    assert "authorization_code_issued" not in flows.audit_events()


async def test_device_approval_for_a_require_mfa_client_from_a_password_session_sends_to_login(two_requests):  # noqa: F811
    """The password-only session's device request for a --require-mfa client, posted to (or
    shown at) /device/consent with its id and CSRF token, goes to its login page: the device is
    not approved."""
    flows = two_requests
    strict = _strict(flows, "--grant", "device_code", "--scope", DEVICE_SCOPE)
    device = await started(flows.http, strict)
    entered = await flows.browser.post("/device", data={**hidden_fields((await flows.browser.get("/device")).text),
                                                        "user_code": device["user_code"]})  # fmt: skip
    request = hidden_fields((await follow(flows.browser, entered)).text)["request"]

    posted = await flows.browser.post(
        "/device/consent", data=flows.form(flows.device_consent, request=request, decision="approve")
    )
    shown = await flows.browser.get(f"/device/consent?request={request}")

    for answer in (posted, shown):
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?request={request}"
    assert "device_approved" not in flows.audit_events()
    assert (await poll(flows.http, strict, device["device_code"])).json()["error"] == "authorization_pending"
    assert entered.headers["location"] == f"/login?request={request}"


async def test_a_session_with_the_second_factor_gets_the_code(two_requests):  # noqa: F811
    """The password-only session's request for a --require-mfa client finishes once the login
    page has had the password and the second factor (enrolled on the way): a code whose tokens
    say acr mfa."""
    flows = two_requests
    strict = _strict_spa(flows)
    alice = Person("", "alice", PASSWORD)

    outcome = await authorize(flows.browser, strict, alice, scope="openid profile")

    assert outcome.location.startswith(CALLBACK + "?code="), outcome.response.text
    tokens = (await exchange(flows.http, strict, outcome.params["code"], outcome.verifier)).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (claims["acr"], claims["amr"]) == (ACR_MFA, ["pwd", "otp", "mfa"])
