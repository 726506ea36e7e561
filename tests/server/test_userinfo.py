"""How userinfo reads its bearer token (RFC 6750 §2) and answers refusals (RFC 6750 §3), in-process,
both databases: the same credential rules and challenges as the guard (`bastion.protocol.rfc6750`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
import pytest

from bastion.server.context import ServerContext
from tests.conftest import ISSUER
from tests.server._people import *  # noqa: F403 - fixtures
from tests.server._people import Person

pytestmark = pytest.mark.anyio

FORM = "application/x-www-form-urlencoded"
MISSING = {"error_description": "Authentication required: send 'Authorization: Bearer <token>'."}
BASIC = {
    "error_description": "HTTP Basic authentication is not accepted. Send an OAuth 2.0 access token as "
    f"'Authorization: Bearer <token>'; obtain one from the token endpoint {ISSUER}/token."
}
BARE_CHALLENGE = 'Bearer realm="bastion"'


async def _access_token(ctx: ServerContext, person: Person, scope: str = "openid email") -> str:
    """An access token as the token endpoint mints it, signed with the server's own key."""
    key = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
    assert key is not None
    now = int(time.time())
    claims = {
        "iss": ctx.issuer,
        "sub": person.sub,
        "aud": ctx.settings.audience,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(12),
        "client_id": "some-client",
        "scope": scope,
    }
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"typ": "at+jwt", "kid": key.kid})


@pytest.fixture
async def token(ctx: ServerContext, make_user: Any) -> str:
    return await _access_token(ctx, await make_user())


async def test_token_in_the_form_body_is_accepted(http, token):
    """RFC 6750 §2.2: a POST may carry the token as the form-encoded `access_token` parameter."""
    response = await http.post("/userinfo", content=f"access_token={token}", headers={"content-type": FORM})

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "alice@example.com"


@pytest.mark.parametrize(
    ("send", "status", "challenge", "body"),
    [
        pytest.param(lambda http, token: http.get("/userinfo"), 401, BARE_CHALLENGE, MISSING, id="no-credentials"),
        pytest.param(
            lambda http, token: http.get("/userinfo", params={"access_token": token}),
            401,
            BARE_CHALLENGE,
            MISSING,
            id="query-token-ignored",
        ),
        pytest.param(
            lambda http, token: http.get("/userinfo", headers={"authorization": "DPoP " + token}),
            401,
            BARE_CHALLENGE,
            MISSING,
            id="other-scheme",
        ),
        pytest.param(
            lambda http, token: http.get("/userinfo", auth=("alice", "secret")),
            401,
            BARE_CHALLENGE,
            BASIC,
            id="basic",
        ),
        pytest.param(
            lambda http, token: http.post(
                "/userinfo",
                content=f"access_token={token}",
                headers={"authorization": f"Bearer {token}", "content-type": FORM},
            ),
            400,
            'Bearer realm="bastion", error="invalid_request", error_description="Send exactly one credential."',
            {"error": "invalid_request", "error_description": "Send exactly one credential."},
            id="header-and-body",
        ),
        pytest.param(
            lambda http, token: http.get(
                "/userinfo", params={"access_token": token}, headers={"authorization": f"Bearer {token}"}
            ),
            400,
            'Bearer realm="bastion", error="invalid_request", '
            'error_description="Send the access token in the Authorization header only."',
            {
                "error": "invalid_request",
                "error_description": "Send the access token in the Authorization header only.",
            },
            id="header-and-query",
        ),
        pytest.param(
            lambda http, token: http.get("/userinfo", headers={"authorization": f"Bearer {token} extra"}),
            401,
            'Bearer realm="bastion", error="invalid_token", '
            'error_description="The access token is invalid, expired or revoked."',
            {"error": "invalid_token", "error_description": "The access token is invalid, expired or revoked."},
            id="two-words",
        ),
    ],
)
async def test_refusals_are_rfc6750_challenges(http, token, send, status, challenge, body):
    """Userinfo refuses what the guard refuses, with the guard's challenge and body (realm "bastion")."""
    response = await send(http, token)

    assert response.status_code == status
    assert response.headers["www-authenticate"] == challenge
    assert response.json() == body
    assert response.headers["cache-control"] == "no-store"


async def test_missing_openid_scope_names_the_scope(http, ctx, make_user):
    """RFC 6750 §3.1 insufficient_scope, 403, with the scope the request needs in challenge and body."""
    token = await _access_token(ctx, await make_user(), scope="email")

    response = await http.get("/userinfo", headers={"authorization": f"Bearer {token}"})

    description = "The access token does not grant the scope this request needs."
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="bastion", error="insufficient_scope", error_description="{description}", scope="openid"'
    )
    assert response.json() == {"error": "insufficient_scope", "error_description": description, "scope": "openid"}
