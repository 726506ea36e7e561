"""Authorization Code + PKCE with OpenID Connect, in-process, on SQLite and PostgreSQL (issue 3)."""

from __future__ import annotations

import jwt
import pytest

from bastion.protocol.oidc import at_hash
from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import CALLBACK, authorize, exchange, tokens_for

pytestmark = pytest.mark.anyio


async def _verify(http, token, audience, alg):
    jwks = (await http.get("/jwks")).json()
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    return header, jwt.decode(token, key, algorithms=[alg], audience=audience, issuer="http://127.0.0.1:8000")


async def test_full_flow_issues_access_id_and_refresh_tokens(browser, http, spa, make_user, settings):
    """Login and consent end in a redirect with code, state and iss; the code buys RFC 9068 and ID tokens."""
    user = await make_user(roles=("editor",))
    outcome = await authorize(browser, spa, user)

    assert outcome.response.status_code == 303
    assert outcome.location.startswith(CALLBACK + "?")
    assert set(outcome.params) == {"code", "state", "iss"}
    assert outcome.params["state"] == outcome.state
    assert outcome.params["iss"] == "http://127.0.0.1:8000"
    assert len(outcome.params["code"]) >= 43

    response = await exchange(http, spa, outcome.params["code"], outcome.verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "id_token", "refresh_token"}
    assert body["scope"] == "openid profile email offline_access"
    assert len(body["refresh_token"]) >= 43

    header, access = await _verify(http, body["access_token"], settings.audience, "ES256")
    assert header["typ"] == "at+jwt"
    assert access["sub"] == user.sub
    assert access["client_id"] == spa["client_id"]
    assert access["amr"] == ["pwd"]
    assert "roles" not in access

    header, id_token = await _verify(http, body["id_token"], spa["client_id"], "RS256")
    assert header["typ"] == "JWT"
    assert header["alg"] == "RS256"
    assert id_token["sub"] == user.sub
    assert id_token["nonce"] == outcome.nonce
    assert id_token["at_hash"] == at_hash(body["access_token"], "RS256")
    assert id_token["amr"] == ["pwd"]
    assert id_token["acr"] == "urn:bastion:acr:password"
    assert id_token["auth_time"] <= id_token["iat"]
    assert id_token["sid"]
    assert id_token["email"] == "alice@example.com"
    assert id_token["email_verified"] is True
    assert id_token["preferred_username"] == "alice"
    assert id_token["name"] == "Alice"


async def test_userinfo_returns_scoped_claims(browser, http, spa, make_user):
    """Userinfo (GET and POST) answers the claims of the granted scopes for an openid access token."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user, scope="openid email")
    auth = {"authorization": f"Bearer {tokens['access_token']}"}

    got = await http.get("/userinfo", headers=auth)
    posted = await http.post("/userinfo", headers=auth)

    assert got.status_code == 200, got.text
    assert got.json() == {"sub": user.sub, "email": "alice@example.com", "email_verified": True}
    assert posted.json() == got.json()


async def test_roles_in_access_token_when_roles_scope_granted(browser, http, spa, make_user, settings):
    """RFC 9068 §2.2.3.1: the user's roles are in the access token when the client was granted `roles`."""
    user = await make_user(roles=("editor", "viewer"))
    tokens = await tokens_for(browser, http, spa, user, scope="openid roles read")

    _, access = await _verify(http, tokens["access_token"], settings.audience, "ES256")
    assert access["roles"] == ["editor", "viewer"]
    assert access["scope"] == "openid roles read"
