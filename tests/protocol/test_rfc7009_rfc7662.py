"""Revocation request rules (RFC 7009 §2.1) and the introspection response (RFC 7662 §2.2, §4)."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.protocol.errors import UnauthorizedClient, UnsupportedTokenType
from bastion.protocol.rfc7009 import check_token_owner, check_token_type_hint
from bastion.protocol.rfc7662 import INACTIVE, active_response, visible_to

CLAIMS = {
    "iss": "https://as.test",
    "sub": "alice",
    "aud": "https://orders.test",
    "exp": 2,
    "iat": 1,
    "jti": "j",
    "client_id": "c",
    "scope": "read",
    "nonce": "never shown",
    "email": "never shown",
}


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_known_or_absent_hints_pass(hint: str | None) -> None:
    """§2.1: the hint is optional; both registered values are ours."""
    check_token_type_hint(hint)


def test_unknown_hint_is_unsupported_token_type() -> None:
    """§2.2.1: a hint the server does not know is unsupported_token_type."""
    with pytest.raises(UnsupportedTokenType) as refused:
        check_token_type_hint("id_token")

    assert refused.value.description == "token_type_hint id_token is not supported"


def test_only_the_owner_revokes() -> None:
    """§2.1: a token issued to another client is unauthorized_client for the caller."""
    check_token_owner("c", "c")
    with pytest.raises(UnauthorizedClient):
        check_token_owner("c", "someone-else")


def test_active_response_shows_only_token_claims() -> None:
    """§2.2: active, the token type and the RFC 9068 claims; nothing else the token carries."""
    assert active_response(CLAIMS) == {
        "active": True,
        "token_type": "Bearer",
        **{k: v for k, v in CLAIMS.items() if k not in {"nonce", "email"}},
    }
    assert INACTIVE == {"active": False}


@pytest.mark.parametrize(
    ("audiences", "aud", "visible"),
    [
        pytest.param((), "https://orders.test", False, id="no-audiences-registered-sees-nothing"),
        pytest.param(("https://orders.test",), "https://orders.test", True, id="its-audience"),
        pytest.param(("https://billing.test",), "https://orders.test", False, id="another-audience"),
        pytest.param(("https://orders.test",), ["https://x.test", "https://orders.test"], True, id="aud-list-with-its"),
        pytest.param(("https://orders.test",), ["https://x.test"], False, id="aud-list-without-its"),
        pytest.param(("https://orders.test",), None, False, id="aud-missing"),
        pytest.param(("https://orders.test",), [["https://orders.test"]], False, id="aud-nested-list"),
    ],
)
def test_visibility_follows_the_callers_audiences(audiences: tuple[str, ...], aud: Any, visible: bool) -> None:
    """§4: a caller learns only about tokens whose aud intersects its audiences; with none registered, about none."""
    claims: dict[str, Any] = {**CLAIMS, "aud": aud}
    assert visible_to(claims, audiences) is visible
