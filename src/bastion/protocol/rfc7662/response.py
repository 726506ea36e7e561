"""The introspection response of RFC 7662 §2.2, built from a validated token's claims."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["INACTIVE", "SHOWN_CLAIMS", "active_response", "visible_to"]

# RFC 7662 §2.2 / §4: an invalid, expired, revoked or foreign token is only "not active", with
# no reason, so that introspection is no oracle.
INACTIVE: Mapping[str, Any] = {"active": False}
# RFC 7662 §2.2 members we show (the token's own claims, RFC 9068 §2.2), nothing else it carries.
SHOWN_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "roles"})


def visible_to(claims: Mapping[str, Any], audiences: Collection[str]) -> bool:
    """RFC 7662 §4: a resource server learns only about tokens issued for one of its own
    audiences (RFC 9068 §3: `aud` a string or a list of strings). A caller with no registered
    audience is bound to none and learns about no token: otherwise it could read every user's
    sub, scope and roles, whatever resource they were issued for."""
    aud = claims.get("aud")
    token_audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return any(isinstance(a, str) and a in audiences for a in token_audiences)


def active_response(claims: Mapping[str, Any]) -> dict[str, Any]:
    """`active: true`, the token type (RFC 6750 bearer) and the shown claims."""
    return {"active": True, "token_type": "Bearer", **{k: v for k, v in claims.items() if k in SHOWN_CLAIMS}}
