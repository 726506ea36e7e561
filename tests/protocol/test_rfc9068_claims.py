"""RFC 9068 JWT access token header and claims (sans-I/O)."""

from __future__ import annotations

from bastion.protocol.rfc9068 import ACCESS_TOKEN_TYP, AccessTokenClaims, access_token_header


def test_header_is_at_jwt_with_kid():
    """RFC 9068 §2.1: typ is at+jwt and the kid names the signing key."""
    assert access_token_header("k1") == {"typ": "at+jwt", "kid": "k1"}
    assert ACCESS_TOKEN_TYP == "at+jwt"


def test_required_claims_and_scope():
    """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; scope space-joined when granted."""
    claims = AccessTokenClaims("https://as.test", "c1", "https://api.test", "c1", 100, 700, "j", ("read", "write"))

    assert claims.as_dict() == {
        "iss": "https://as.test",
        "sub": "c1",
        "aud": "https://api.test",
        "exp": 700,
        "iat": 100,
        "jti": "j",
        "client_id": "c1",
        "scope": "read write",
    }


def test_no_scope_claim_when_nothing_granted():
    """An empty grant leaves scope out rather than sending an empty string."""
    claims = AccessTokenClaims("https://as.test", "c1", "https://api.test", "c1", 100, 700, "j", ())

    assert "scope" not in claims.as_dict()
