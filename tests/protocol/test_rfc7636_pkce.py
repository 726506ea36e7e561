"""PKCE rules (RFC 7636) as sans-I/O functions, with the RFC's Appendix B vector."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.protocol.errors import InvalidGrant, InvalidRequest
from bastion.protocol.rfc7636 import check_challenge, s256_challenge, verify_code_verifier

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def test_s256_matches_rfc_appendix_b():
    """S256 of the RFC's example verifier is the RFC's example challenge."""
    assert s256_challenge(VERIFIER) == CHALLENGE


def test_correct_verifier_passes():
    """The matching verifier is accepted."""
    verify_code_verifier(VERIFIER, CHALLENGE)


@pytest.mark.parametrize(
    ("challenge", "method", "required", "description"),
    [
        pytest.param(None, None, True, "code_challenge is required (PKCE with S256, RFC 7636)", id="missing"),
        pytest.param(CHALLENGE, "plain", True, "code_challenge_method must be S256", id="plain"),
        pytest.param(CHALLENGE, "s256", True, "code_challenge_method must be S256", id="lowercase-method"),
        pytest.param(CHALLENGE, None, True, "code_challenge_method is required and must be S256", id="no-method"),
        pytest.param(None, "S256", False, "code_challenge_method without code_challenge", id="method-only"),
        pytest.param(CHALLENGE + "A", "S256", True, "code_challenge must be 43 base64url characters (S256)", id="44"),
        pytest.param(
            CHALLENGE[:-1] + "=", "S256", True, "code_challenge must be 43 base64url characters (S256)", id="pad"
        ),
    ],
)
def test_bad_challenge_is_invalid_request(challenge, method, required, description):
    """RFC 7636 §4.4.1: a missing or non-S256 challenge is invalid_request."""
    with pytest.raises(InvalidRequest) as caught:
        check_challenge(challenge, method, required=required)
    assert caught.value.description == description


def test_no_challenge_allowed_when_not_required():
    """Without a requirement, no challenge is fine (a relaxed confidential OIDC client)."""
    assert check_challenge(None, None, required=False) is None


@pytest.mark.parametrize(
    ("verifier", "challenge", "description"),
    [
        pytest.param(None, CHALLENGE, "code_verifier is required", id="missing"),
        pytest.param("a" * 42, CHALLENGE, "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]", id="42"),
        pytest.param("a" * 129, CHALLENGE, "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]", id="129"),
        pytest.param(
            VERIFIER[:-1] + "+", CHALLENGE, "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]", id="plus"
        ),
        pytest.param("a" * 43, CHALLENGE, "code_verifier does not match the code_challenge", id="wrong"),
        pytest.param(
            VERIFIER, None, "code_verifier sent, but the authorization request had no code_challenge", id="downgrade"
        ),
    ],
)
def test_bad_verifier_is_invalid_grant(verifier, challenge, description):
    """A missing, malformed or wrong verifier, or one without a challenge (RFC 9700 §4.8.2), is invalid_grant."""
    with pytest.raises(InvalidGrant) as caught:
        verify_code_verifier(verifier, challenge)
    assert caught.value.description == description


@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
def test_any_valid_verifier_round_trips(verifier):
    """Every syntactically valid verifier verifies against its own S256 challenge."""
    challenge = s256_challenge(verifier)
    assert check_challenge(challenge, "S256", required=True) == challenge
    verify_code_verifier(verifier, challenge)
