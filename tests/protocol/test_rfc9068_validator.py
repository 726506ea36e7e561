"""The shared RFC 9068 §4 validator core (sans-I/O): the audience policy of a TrustedIssuer, and
the header read before a key is chosen. The full check matrix runs through the guard's
validator (tests/guard/test_validator.py), which is this core plus a cache and a denylist."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose import keyset_from_jwks
from bastion.protocol.rfc9068 import ANY_AUDIENCE, AccessTokenValidator, TrustedIssuer, UnknownKey
from tests.guard._issuer import AUDIENCE, TestIssuer

ISSUER = TestIssuer()


def _validator(audience: str | None) -> AccessTokenValidator:
    validator = AccessTokenValidator([TrustedIssuer(ISSUER.issuer, audience)])
    validator.set_keys(ISSUER.issuer, keyset_from_jwks(ISSUER.public_jwks()))
    return validator


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(AUDIENCE, id="ours"),
        pytest.param("https://other.test", id="another-resource"),
        pytest.param(["https://a.test", "https://b.test"], id="a-list"),
    ],
)
def test_any_audience_accepts_every_resource(aud: Any) -> None:
    """ANY_AUDIENCE (the authorization server reading its own tokens) accepts any aud it issued."""
    token = _validator(ANY_AUDIENCE).verify(ISSUER.mint(aud=aud), time.time())

    assert token.audience == ((aud,) if isinstance(aud, str) else tuple(aud))


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(None, id="missing"),
        pytest.param([], id="empty-list"),
        pytest.param(42, id="number"),
        pytest.param(["https://a.test", 1], id="list-with-number"),
    ],
)
def test_any_audience_still_requires_a_well_typed_aud(aud: Any) -> None:
    """RFC 9068 §2.2: aud is REQUIRED, a string or strings, whatever the audience policy."""
    with pytest.raises(InvalidToken) as refused:
        _validator(ANY_AUDIENCE).verify(ISSUER.mint(aud=aud), time.time())

    assert refused.value.detail == "audience mismatch"


def test_a_resource_server_audience_refuses_other_resources() -> None:
    """RFC 9068 §4: a resource server's issuer policy accepts only tokens naming it."""
    with pytest.raises(InvalidToken) as refused:
        _validator(AUDIENCE).verify(ISSUER.mint(aud="https://other.test"), time.time())

    assert refused.value.detail == "audience mismatch"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        pytest.param({"jku": "https://evil.test/jwks"}, "header parameter jku refused", id="jku"),
        pytest.param({"crit": ["exp"]}, "crit header refused", id="crit"),
        pytest.param({"alg": "HS256"}, "algorithm not accepted: 'HS256'", id="hmac"),
    ],
)
def test_header_is_refused_before_any_key_is_needed(header: dict[str, Any], detail: str) -> None:
    """`header()` runs HEADER_CHECKS, so a caller looking up a key by kid refuses these first."""
    validator = AccessTokenValidator([TrustedIssuer(ISSUER.issuer, AUDIENCE)])  # no keys at all

    with pytest.raises(InvalidToken) as refused:
        validator.header(ISSUER.mint(header=header))

    assert refused.value.detail == detail


def test_unknown_kid_asks_the_caller_for_keys() -> None:
    """A valid token whose kid no key matches raises UnknownKey (the caller fetches, then asks again)."""
    validator = AccessTokenValidator([TrustedIssuer(ISSUER.issuer, AUDIENCE)])

    with pytest.raises(UnknownKey) as unknown:
        validator.verify(ISSUER.mint(), time.time())

    assert (unknown.value.issuer, unknown.value.kid) == (ISSUER.issuer, ISSUER.ec_kid)
