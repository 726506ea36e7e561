"""The per-client policy that relaxes PKCE for a confidential OpenID Connect client sending a
nonce (RFC 9700 §2.1.1, issue 3), and everything it does not relax; both databases."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from bastion.server import admin
from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import CALLBACK, authorize

pytestmark = pytest.mark.anyio

MISSING_CHALLENGE = "code_challenge is required (PKCE with S256, RFC 7636)"
NO_PKCE = {"code_challenge": None, "code_challenge_method": None}
OIDC = "openid profile"  # what the web app is registered for


async def _confidential(register: Any, *, relaxed: bool) -> dict[str, Any]:
    return dict(
        await register(
            name="Web app",
            grants=("authorization_code",),
            scope=("openid", "profile", "read"),
            auth_method="client_secret_basic",
            redirect_uris=(CALLBACK,),
            pkce_optional_with_nonce=relaxed,
        )
    )


async def _exchange(http: httpx.AsyncClient, client: dict[str, Any], code: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, **extra}
    return await http.post("/token", data=data, auth=(client["client_id"], client["client_secret"]))


@pytest.mark.parametrize(
    ("relaxed", "overrides"),
    [
        pytest.param(True, {"nonce": None}, id="relaxed-without-nonce"),
        pytest.param(True, {"scope": "profile read"}, id="relaxed-without-openid"),
        pytest.param(False, {}, id="not-relaxed-with-nonce-and-openid"),
    ],
)
async def test_missing_challenge_is_refused_unless_the_policy_applies(browser, register, relaxed, overrides):
    """Without a code_challenge the request goes back as invalid_request with the usual description
    unless the client is relaxed AND sends a nonce AND asks for openid."""
    client = await _confidential(register, relaxed=relaxed)

    outcome = await authorize(browser, client, None, **{"scope": OIDC, **NO_PKCE, **overrides})

    assert outcome.location.startswith(CALLBACK + "?")
    assert outcome.params["error"] == "invalid_request"
    assert outcome.params["error_description"] == MISSING_CHALLENGE
    assert outcome.params["state"] == outcome.state


async def test_relaxed_client_with_nonce_gets_code_and_exchanges_it_with_its_secret(browser, http, register, make_user):
    """A relaxed confidential client sending nonce and openid without PKCE gets a code, and its
    secret alone (no code_verifier) exchanges it for tokens carrying the nonce."""
    client = await _confidential(register, relaxed=True)
    user = await make_user()

    outcome = await authorize(browser, client, user, scope=OIDC, **NO_PKCE)
    response = await _exchange(http, client, outcome.params["code"])

    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == outcome.nonce


async def test_code_verifier_for_a_code_without_challenge_is_invalid_grant(browser, http, register, make_user):
    """RFC 9700 §4.8.2 (PKCE downgrade): a code_verifier sent for a code issued without a challenge is refused."""
    client = await _confidential(register, relaxed=True)
    user = await make_user()
    outcome = await authorize(browser, client, user, scope=OIDC, **NO_PKCE)

    response = await _exchange(http, client, outcome.params["code"], code_verifier=outcome.verifier)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier sent, but the authorization request had no code_challenge",
    }


async def test_relaxed_client_that_sends_a_challenge_must_send_the_verifier(browser, http, register, make_user):
    """The policy only makes PKCE optional: a code bound to a challenge still needs its verifier."""
    client = await _confidential(register, relaxed=True)
    user = await make_user()
    outcome = await authorize(browser, client, user, scope=OIDC)

    without = await _exchange(http, client, outcome.params["code"])

    assert without.status_code == 400
    assert without.json() == {"error": "invalid_grant", "error_description": "code_verifier is required"}


async def test_public_client_cannot_be_relaxed(register):
    """A public client (auth method none) is refused the policy: it always uses PKCE."""
    with pytest.raises(admin.AdminError) as refused:
        await register(
            name="SPA",
            grants=("authorization_code",),
            scope=("openid",),
            auth_method="none",
            redirect_uris=(CALLBACK,),
            pkce_optional_with_nonce=True,
        )

    assert str(refused.value) == (
        "--pkce-optional-with-nonce is only for confidential clients; "
        "a public client (--auth-method none) always uses PKCE (RFC 9700 §2.1.1)"
    )


async def test_public_client_without_challenge_is_refused_even_with_nonce(browser, spa):
    """The public SPA sending nonce and openid still needs PKCE."""
    outcome = await authorize(browser, spa, None, **NO_PKCE)

    assert outcome.params["error"] == "invalid_request"
    assert outcome.params["error_description"] == MISSING_CHALLENGE
