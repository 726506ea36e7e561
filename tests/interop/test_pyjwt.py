"""PyJWT validates Bastion's access tokens from nothing but discovery and the JWKS it names."""

from __future__ import annotations

import httpx
import jwt
import pytest

from tests.interop._peers import OIDC_DISCOVERY, audience, client_credentials_token, create_reader

pytestmark = pytest.mark.server


def test_pyjwt_accepts_token_from_discovery_and_jwks(live_server):
    """PyJWKClient on the discovered jwks_uri verifies signature, iss, aud, exp and typ at+jwt."""
    client = create_reader(live_server)
    token = client_credentials_token(live_server, client)
    metadata = httpx.get(live_server.url + OIDC_DISCOVERY, timeout=10).json()

    signing_key = jwt.PyJWKClient(metadata["jwks_uri"], cache_jwk_set=False).get_signing_key_from_jwt(token)
    # RFC 8725 §3.1: the algorithm comes from the key, never from the token's own header.
    decoded = jwt.api_jwt.decode_complete(
        token,
        signing_key.key,
        algorithms=[signing_key.algorithm_name],
        issuer=metadata["issuer"],
        audience=audience(live_server),
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
    )

    assert metadata["issuer"] == live_server.url
    # RFC 9068 §4: the resource server MUST check typ, which PyJWT leaves to the caller.
    assert decoded["header"]["typ"] == "at+jwt"
    assert decoded["header"]["kid"] == signing_key.key_id
    claims = decoded["payload"]
    assert claims["sub"] == claims["client_id"] == client["client_id"]
    assert claims["scope"] == "read"
