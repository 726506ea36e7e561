"""Checks on an ID token we issued and now read back as `id_token_hint` (OpenID Connect
RP-Initiated Logout 1.0 §2), one concern per function.

The signature is verified first, with our own key (`bastion.protocol.jose`). Expiry is NOT
checked: the hint names the session and the client, and §2 lets the OP accept an expired one.
Every failure is `InvalidToken` with a private detail; the reader treats it as no hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.protocol.errors import InvalidToken

__all__ = ["ID_TOKEN_HINT_CHECKS", "IdTokenCheck"]

IdTokenCheck = Callable[[dict[str, Any], dict[str, Any], str], None]

_ID_TOKEN_TYPES = frozenset({"jwt", "application/jwt"})


def check_id_token_typ(header: dict[str, Any], claims: dict[str, Any], issuer: str) -> None:
    """Our ID tokens say `typ: JWT` (media types compare case-insensitively, RFC 7515 §4.1.9), so
    an access token (`at+jwt`, RFC 9068 §2.1) is never taken for one (RFC 8725 §3.11)."""
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ID_TOKEN_TYPES:
        raise InvalidToken(f"typ not accepted: {typ!r}")


def check_id_token_issuer(header: dict[str, Any], claims: dict[str, Any], issuer: str) -> None:
    """OpenID Connect Core §3.1.3.7 (2): iss must exactly match our issuer identifier."""
    if claims.get("iss") != issuer:
        raise InvalidToken("issuer mismatch")


def check_id_token_subject(header: dict[str, Any], claims: dict[str, Any], issuer: str) -> None:
    """OpenID Connect Core §2: sub is REQUIRED (a string)."""
    if not isinstance(claims.get("sub"), str):
        raise InvalidToken("sub missing or not a string")


def check_id_token_audience(header: dict[str, Any], claims: dict[str, Any], issuer: str) -> None:
    """OpenID Connect Core §2: aud is REQUIRED; it names the client the logout is for."""
    if "aud" not in claims:
        raise InvalidToken("aud missing")


ID_TOKEN_HINT_CHECKS: tuple[IdTokenCheck, ...] = (
    check_id_token_typ,
    check_id_token_issuer,
    check_id_token_subject,
    check_id_token_audience,
)
