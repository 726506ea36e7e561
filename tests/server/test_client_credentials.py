"""Client Credentials at the token endpoint, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import jwt
import pytest

pytestmark = pytest.mark.anyio


async def test_issues_rfc9068_access_token(http, register, settings):
    """A confidential client gets a signed at+jwt access token with the RFC 9068 claims."""
    client = await register(scope=("read", "write"))
    response = await http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client["client_id"], client["client_secret"]),
    )

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "read"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    jwks = (await http.get("/jwks")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        body["access_token"], key, algorithms=["ES256"], audience=settings.audience, issuer=settings.issuer
    )
    assert claims["sub"] == client["client_id"]
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "read"
    assert claims["exp"] - claims["iat"] == 600
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}


async def test_wrong_secret_is_invalid_client_with_basic_challenge(http, register):
    """A wrong secret over Basic is 401 invalid_client with a Basic WWW-Authenticate challenge."""
    client = await register()
    response = await http.post("/token", data={"grant_type": "client_credentials"}, auth=(client["client_id"], "nope"))

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "client authentication failed"}
    assert response.headers["www-authenticate"].startswith("Basic ")
