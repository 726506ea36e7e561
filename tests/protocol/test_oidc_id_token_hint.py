"""Checks on our own ID token read back as id_token_hint (RP-Initiated Logout 1.0 §2)."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.protocol.errors import InvalidToken
from bastion.protocol.oidc import ID_TOKEN_HINT_CHECKS

ISSUER = "https://as.test"
CLAIMS = {"iss": ISSUER, "sub": "alice", "aud": "client", "exp": 1, "iat": 0}


def _check(header: dict[str, Any], claims: dict[str, Any]) -> None:
    for check in ID_TOKEN_HINT_CHECKS:
        check(header, claims, ISSUER)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt"])
def test_an_expired_id_token_is_a_hint(typ: str) -> None:
    """Expiry is not checked (§2 allows an expired hint); typ compares case-insensitively."""
    _check({"typ": typ}, CLAIMS)


@pytest.mark.parametrize(
    ("header", "changes", "detail"),
    [
        pytest.param({"typ": "at+jwt"}, {}, "typ not accepted: 'at+jwt'", id="access-token"),
        pytest.param({}, {}, "typ not accepted: None", id="no-typ"),
        pytest.param({"typ": "JWT"}, {"iss": "https://other.test"}, "issuer mismatch", id="other-issuer"),
        pytest.param({"typ": "JWT"}, {"sub": None}, "sub missing or not a string", id="no-sub"),
        pytest.param({"typ": "JWT"}, {"aud": None}, "aud missing", id="no-aud"),
    ],
)
def test_what_is_not_our_id_token_is_no_hint(header: dict[str, Any], changes: dict[str, Any], detail: str) -> None:
    """Anything but our own ID token (typ JWT, our iss, sub and aud present) is refused."""
    claims = {k: v for k, v in {**CLAIMS, **changes}.items() if v is not None}

    with pytest.raises(InvalidToken) as refused:
        _check(header, claims)

    assert refused.value.detail == detail
