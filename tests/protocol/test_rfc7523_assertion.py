"""RFC 7523 §3 client assertion rules, tightened per RFC 7523bis / FAPI 2.0 (sans-I/O, injected clock)."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.protocol.errors import InvalidClient
from bastion.protocol.jose import ASSERTION_ALGORITHMS
from bastion.protocol.rfc7523 import AssertionPolicy, check_assertion_claims, check_assertion_header

ISSUER = "https://as.example.test"
NOW = 1_800_000_000
POLICY = AssertionPolicy(
    issuer=ISSUER, token_endpoint=ISSUER + "/token", accept_token_endpoint_audience=False, max_lifetime=300, leeway=30
)
COMPAT = AssertionPolicy(
    issuer=ISSUER, token_endpoint=ISSUER + "/token", accept_token_endpoint_audience=True, max_lifetime=300, leeway=30
)


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"iss": "c1", "sub": "c1", "aud": ISSUER, "iat": NOW, "exp": NOW + 60, "jti": "j1"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_claims_return_jti_and_exp():
    """The baseline: iss = sub = client_id, aud = issuer, short exp, a jti."""
    assert check_assertion_claims(claims(), "c1", POLICY, NOW) == ("j1", NOW + 60)


@pytest.mark.parametrize(
    ("changes", "description"),
    [
        pytest.param({"iss": "c2"}, "client assertion iss and sub must both be the client_id (RFC 7523 §3)", id="iss"),
        pytest.param({"sub": "c2"}, "client assertion iss and sub must both be the client_id (RFC 7523 §3)", id="sub"),
        pytest.param(
            {"iss": None}, "client assertion iss and sub must both be the client_id (RFC 7523 §3)", id="iss-missing"
        ),
        pytest.param(
            {"aud": [ISSUER]}, "client assertion aud must be a single value: the issuer identifier", id="aud-array"
        ),
        pytest.param(
            {"aud": None}, "client assertion aud must be a single value: the issuer identifier", id="aud-missing"
        ),
        pytest.param(
            {"aud": ISSUER + "/token"}, "client assertion aud must be the issuer identifier", id="aud-token-endpoint"
        ),
        pytest.param(
            {"aud": ISSUER + "/"}, "client assertion aud must be the issuer identifier", id="aud-trailing-slash"
        ),
        pytest.param(
            {"aud": "https://evil.test"}, "client assertion aud must be the issuer identifier", id="aud-other"
        ),
        pytest.param({"exp": None}, "client assertion exp is required (RFC 7523 §3)", id="exp-missing"),
        pytest.param({"exp": True}, "client assertion exp is required (RFC 7523 §3)", id="exp-bool"),
        pytest.param({"exp": str(NOW + 60)}, "client assertion exp is required (RFC 7523 §3)", id="exp-string"),
        pytest.param({"exp": NOW - 31}, "client assertion has expired", id="expired-beyond-leeway"),
        pytest.param({"exp": NOW + 301}, "client assertion lifetime exceeds 300 seconds", id="too-long"),
        pytest.param(
            {"iat": None, "exp": NOW + 301}, "client assertion lifetime exceeds 300 seconds", id="too-long-without-iat"
        ),
        pytest.param(
            {"iat": NOW + 1000, "exp": NOW + 1200}, "client assertion iat is in the future", id="iat-far-future"
        ),
        pytest.param({"iat": NOW + 31, "exp": NOW + 60}, "client assertion iat is in the future", id="iat-future"),
        pytest.param(
            {"iat": str(NOW)}, "client assertion iat must be a NumericDate in whole seconds", id="iat-string"
        ),
        pytest.param({"iat": True}, "client assertion iat must be a NumericDate in whole seconds", id="iat-bool"),
        pytest.param({"nbf": NOW + 31}, "client assertion is not yet valid", id="nbf-future"),
        pytest.param(
            {"nbf": str(NOW + 600)}, "client assertion nbf must be a NumericDate in whole seconds", id="nbf-string"
        ),
        pytest.param({"jti": None}, "client assertion jti is required for replay protection", id="jti-missing"),
        pytest.param({"jti": ""}, "client assertion jti is required for replay protection", id="jti-empty"),
        pytest.param({"jti": 7}, "client assertion jti is required for replay protection", id="jti-number"),
        pytest.param({"jti": "a\x00b"}, "client assertion jti must be 1-256 printable characters", id="jti-nul"),
        pytest.param({"jti": "a\nb"}, "client assertion jti must be 1-256 printable characters", id="jti-newline"),
        pytest.param({"jti": "j" * 257}, "client assertion jti must be 1-256 printable characters", id="jti-257"),
    ],
)
def test_claim_rules(changes, description):
    """Each broken rule is invalid_client with a description naming it (logged, not sent)."""
    with pytest.raises(InvalidClient) as caught:
        check_assertion_claims(claims(**changes), "c1", POLICY, NOW)

    assert caught.value.description == description


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": NOW - 30}, id="expired-within-leeway"),
        pytest.param({"exp": NOW + 300}, id="lifetime-exactly-max"),
        pytest.param({"nbf": NOW + 30}, id="nbf-within-leeway"),
        pytest.param({"iat": NOW + 30}, id="iat-within-leeway"),
        pytest.param({"iat": NOW - 200, "exp": NOW + 100}, id="old-iat-total-300"),
        pytest.param({"jti": "j" * 256}, id="jti-256"),
        pytest.param({"jti": "ünïcode-jti"}, id="jti-unicode"),
    ],
)
def test_boundaries_accepted(changes):
    """Clock leeway and the maximum lifetime are inclusive bounds."""
    check_assertion_claims(claims(**changes), "c1", POLICY, NOW)


def test_token_endpoint_audience_only_with_compat_policy():
    """The token endpoint URL as aud is accepted only for a client flagged for compatibility."""
    assert check_assertion_claims(claims(aud=ISSUER + "/token"), "c1", COMPAT, NOW) == ("j1", NOW + 60)
    assert check_assertion_claims(claims(), "c1", COMPAT, NOW) == ("j1", NOW + 60)
    with pytest.raises(InvalidClient):
        check_assertion_claims(claims(aud=[ISSUER + "/token"]), "c1", COMPAT, NOW)


@pytest.mark.parametrize("alg", sorted(ASSERTION_ALGORITHMS))
def test_asymmetric_algorithms_allowed(alg):
    """Every allowlisted asymmetric algorithm passes the header check."""
    assert check_assertion_header({"alg": alg, "kid": "k"}) == alg


@pytest.mark.parametrize(
    ("header", "description"),
    [
        pytest.param({"alg": "none"}, "client assertion algorithm not allowed", id="none"),
        pytest.param({"alg": "None"}, "client assertion algorithm not allowed", id="None"),
        pytest.param({"alg": "HS256"}, "client assertion algorithm not allowed", id="HS256"),
        pytest.param({"alg": "HS512"}, "client assertion algorithm not allowed", id="HS512"),
        pytest.param({"alg": "es256"}, "client assertion algorithm not allowed", id="lowercase"),
        pytest.param({}, "client assertion algorithm not allowed", id="missing"),
        pytest.param({"alg": ["ES256"]}, "client assertion algorithm not allowed", id="not-a-string"),
        pytest.param({"alg": "ES256", "crit": ["exp"]}, "client assertion has unsupported critical headers", id="crit"),
        pytest.param(
            {"alg": "ES256", "crit": []}, "client assertion has unsupported critical headers", id="crit-empty"
        ),
    ],
)
def test_header_rules(header, description):
    """RFC 8725 §3.1-3.2: none and HMAC are refused; RFC 7515 §4.1.11: unknown crit is refused."""
    with pytest.raises(InvalidClient) as caught:
        check_assertion_header(header)

    assert caught.value.description == description
