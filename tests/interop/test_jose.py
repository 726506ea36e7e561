"""The npm package `jose` validates Bastion's access tokens from nothing but discovery and JWKS.

A real `bastion serve` process, a client made with the real CLI, a token over real HTTP, and a
verifier nobody here wrote (jose's createRemoteJWKSet + jwtVerify, run by Node.js).
"""

from __future__ import annotations

import jwt
import pytest

from tests.interop._peers import (
    RFC8414_DISCOVERY,
    alter_payload,
    audience,
    client_credentials_token,
    create_reader,
    resign_with_foreign_key,
    verify_with_jose,
)

pytestmark = [pytest.mark.npm, pytest.mark.server]


def test_jose_accepts_token_from_discovery_and_jwks(live_server, node_dir):
    """jose verifies signature, issuer, audience and typ at+jwt of a token from POST /token."""
    client = create_reader(live_server)
    token = client_credentials_token(live_server, client)

    verdict = verify_with_jose(node_dir, live_server.url + RFC8414_DISCOVERY, audience(live_server), token)

    assert verdict["valid"] is True, verdict
    assert verdict["header"] == {"alg": "ES256", "typ": "at+jwt", "kid": jwt.get_unverified_header(token)["kid"]}
    payload = verdict["payload"]
    assert payload["iss"] == live_server.url
    assert payload["aud"] == audience(live_server)
    assert payload["sub"] == payload["client_id"] == client["client_id"]
    assert payload["scope"] == "read"


def _altered(token: str) -> str:
    return alter_payload(token, scope="read admin")


def _foreign_kid(token: str) -> str:
    return resign_with_foreign_key(token, kid="not-in-the-jwks")


def _foreign_key_claiming_our_kid(token: str) -> str:
    return resign_with_foreign_key(token, kid=jwt.get_unverified_header(token)["kid"])


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        pytest.param(_altered, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", id="payload-altered"),
        pytest.param(_foreign_kid, "ERR_JWKS_NO_MATCHING_KEY", id="foreign-key-unknown-kid"),
        pytest.param(_foreign_key_claiming_our_kid, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", id="foreign-key-our-kid"),
    ],
)
def test_jose_rejects_forged_token(interop_server, node_dir, forge, code):
    """jose rejects a token whose payload was altered or which a key outside the JWKS signed."""
    genuine = client_credentials_token(interop_server, create_reader(interop_server))
    discovery = interop_server.url + RFC8414_DISCOVERY

    verdict = verify_with_jose(node_dir, discovery, audience(interop_server), forge(genuine))

    assert (verdict["valid"], verdict["code"]) == (False, code), verdict
    # The same verifier accepts the genuine token, so the rejection is about the forgery.
    assert verify_with_jose(node_dir, discovery, audience(interop_server), genuine)["valid"] is True
