"""Key selection from a JWKS (RFC 7517 §5): the candidates for a kid and alg, for signers that
hold several keys at once (a client rotating its own assertion keys, RFC 7523 §3)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bastion.protocol.jose import ASYMMETRIC_ALGORITHMS, TrustedKey, keyset_from_jwks
from bastion.protocol.jose.keys import key_fits


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


@pytest.mark.parametrize(
    "member",
    [
        pytest.param({"alg": ["ES256"]}, id="alg-list"),
        pytest.param({"alg": {"a": 1}}, id="alg-object"),
        pytest.param({"crv": ["P-256"]}, id="crv-list"),
        pytest.param({"kty": ["EC"]}, id="kty-list"),
        pytest.param({"use": ["sig"]}, id="use-list"),
        pytest.param({"kid": ["a"]}, id="kid-list"),
    ],
)
def test_jwk_with_a_non_string_member_is_not_trusted(member: dict[str, object]) -> None:
    """RFC 7517 §4: kty, crv, alg, use and kid are strings; otherwise the key is skipped, never a TypeError."""
    assert keyset_from_jwks({"keys": [_ec("a") | member]}).keys == ()


def _signed(alg: str) -> tuple[bytes, bytes, object]:
    """A signing input, its signature under `alg`, and the public key that verifies it."""
    private = {
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }[alg]()
    primitive = ASYMMETRIC_ALGORITHMS[alg]
    signing_input = b"header.payload"
    return signing_input, primitive.sign(signing_input, private), private.public_key()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key_alg", "header_alg"),
    [
        pytest.param("RS256", "ES256", id="ES256-on-RSA-key"),
        pytest.param("ES256", "RS256", id="RS256-on-EC-key"),
        pytest.param("ES256", "ES384", id="ES384-on-P256-key"),
        pytest.param("RS256", "EdDSA", id="EdDSA-on-RSA-key"),
        pytest.param("EdDSA", "ES256", id="ES256-on-OKP-key"),
    ],
)
def test_verify_refuses_an_algorithm_that_does_not_fit_the_key(key_alg: str, header_alg: str) -> None:
    """Even a TrustedKey built with a wrong algorithm set (not via key_from_jwk) answers False for
    an alg of another key type: PyJWT's primitive would raise TypeError or AttributeError."""
    signing_input, signature, public = _signed(header_alg)
    _, _, wrong_key = _signed(key_alg)
    trusted = TrustedKey("k", frozenset(ASYMMETRIC_ALGORITHMS), wrong_key)

    assert trusted.verify(header_alg, signing_input, signature) is False
    assert key_fits(header_alg, wrong_key) is False
    assert key_fits(header_alg, public) is True
    assert TrustedKey("k", frozenset({header_alg}), public).verify(header_alg, signing_input, signature) is True
