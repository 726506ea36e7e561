"""Key selection from a JWKS (RFC 7517 §5): the candidates for a kid and alg, for signers that
hold several keys at once (a client rotating its own assertion keys, RFC 7523 §3)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bastion.protocol.jose import keyset_from_jwks


def _ec(kid: str | None, crv: ec.EllipticCurve | None = None) -> dict[str, object]:
    jwk = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(crv or ec.SECP256R1()).public_key()))
    return jwk | ({"kid": kid} if kid else {})


def _rsa(kid: str, bits: int = 2048) -> dict[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return json.loads(RSAAlgorithm.to_jwk(key.public_key())) | {"kid": kid}


def test_matching_without_kid_offers_every_key_of_the_algorithm() -> None:
    """No kid: every key that may verify the algorithm is a candidate, in JWKS order."""
    keys = keyset_from_jwks({"keys": [_ec("a"), _ec(None), _rsa("r")]})

    assert [k.kid for k in keys.matching(None, "ES256")] == ["a", None]
    assert [k.kid for k in keys.matching("a", "ES256")] == ["a"]
    assert keys.matching("r", "ES256") == ()
    assert keys.find(None, "ES256") is None  # ambiguous for a resource server


@pytest.mark.parametrize(
    ("jwk", "alg"),
    [
        pytest.param(_ec("p384", ec.SECP384R1()), "ES256", id="ec-key-for-another-curve"),
        pytest.param(_rsa("short", 1024), "RS256", id="rsa-under-2048-bits"),
        pytest.param(_ec("enc") | {"use": "enc"}, "ES256", id="encryption-key"),
        pytest.param({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, "HS256", id="symmetric"),
    ],
)
def test_keys_that_must_not_verify_are_never_candidates(jwk: dict[str, object], alg: str) -> None:
    """RFC 7518 §3.3/§3.4, RFC 8725 §3.1: wrong curve, short RSA, non-signature and oct keys are skipped."""
    assert keyset_from_jwks({"keys": [jwk]}).matching(None, alg) == ()
