"""The JWT access-token checks of RFC 9068 §4 and RFC 8725, one concern per function.

Header checks (`HEADER_CHECKS`, the RFC 8725 ones every JWS we verify gets, from `jose`) run
before an issuer or key is chosen; claim checks run with the issuer's configuration. Every
failure is `InvalidToken` with a private detail (RFC 6750 §3.1). The guard and the authorization
server run these same tuples (`validator`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose.headers import HEADER_CHECKS, HeaderCheck
from bastion.protocol.rfc9068.issuer import TrustedIssuer

__all__ = ["CLAIM_CHECKS", "HEADER_CHECKS", "ClaimCheck", "HeaderCheck"]

Header = dict[str, Any]
Claims = dict[str, Any]
ClaimCheck = Callable[[Header, Claims, TrustedIssuer, float], None]

_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_LEGACY_TYPES = frozenset({"jwt", "application/jwt"})


def check_typ(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 9068 §4: typ must be at+jwt (media types compare case-insensitively, RFC 7515 §4.1.9)."""
    typ = header.get("typ")
    value = typ.lower() if isinstance(typ, str) else None
    if value in _ACCESS_TOKEN_TYPES:
        return
    if issuer.legacy and (typ is None or value in _LEGACY_TYPES):
        return
    raise InvalidToken(f"typ not accepted: {typ!r}")


def check_not_id_token(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 8725 §3.11: an ID token (nonce, at_hash, aud = a client) never authorizes a call."""
    if "nonce" in claims or "at_hash" in claims:
        raise InvalidToken("looks like an ID token (nonce/at_hash)")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    # Strings only: this check runs before the type checks, and a claim holding an object or a
    # list (unhashable) must be refused later as the wrong type, never raise here (a 5xx).
    clients = {c for c in (claims.get("client_id"), claims.get("azp")) if isinstance(c, str)}
    if clients & {a for a in audiences if isinstance(a, str)}:
        raise InvalidToken("looks like an ID token (aud is a client)")


def check_audience(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 9068 §4: aud must contain this resource server's identifier (any identifier under
    the issuer's ANY_AUDIENCE policy, but aud is still required and a string or strings)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        ok = issuer.audience is None or aud == issuer.audience
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        ok = issuer.audience is None or issuer.audience in aud
    else:
        ok = False
    if not ok:
        raise InvalidToken("audience mismatch")


def _number(claims: Claims, name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise InvalidToken(f"{name} missing")
        return None
    # bool is an int in Python; a JSON true is not a NumericDate (RFC 7519 §2).
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} is not a NumericDate")
    return float(value)


def check_expiry(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 9068 §4: the current time must be before exp (with a small leeway)."""
    exp = _number(claims, "exp", required=True)
    if exp is not None and now >= exp + issuer.leeway:
        raise InvalidToken("expired")


def check_not_before(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 7519 §4.1.5: not accepted before nbf (with a small leeway)."""
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and now + issuer.leeway < nbf:
        raise InvalidToken("not yet valid")


def check_issued_at(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 9068 §2.2 requires iat; a token issued in the future is refused."""
    iat = _number(claims, "iat", required=not issuer.legacy)
    if iat is not None and now + issuer.leeway < iat:
        raise InvalidToken("issued in the future")


def check_required_claims(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 9068 §2.2: sub, client_id and jti are strings (legacy issuers may use azp)."""
    names = ("sub",) if issuer.legacy else ("sub", "client_id", "jti")
    for name in names:
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise InvalidToken(f"{name} missing or not a string")
    if issuer.legacy and not isinstance(claims.get("client_id", claims.get("azp", "")), str):
        raise InvalidToken("client_id is not a string")


def check_claim_types(header: Header, claims: Claims, issuer: TrustedIssuer, now: float) -> None:
    """RFC 9068 §2.2.3: scope is a space-separated string; roles is a list of strings."""
    scope = claims.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise InvalidToken("scope is not a string")
    roles = claims.get("roles")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise InvalidToken("roles is not a list of strings")


CLAIM_CHECKS: tuple[ClaimCheck, ...] = (
    check_typ,
    check_not_id_token,
    check_audience,
    check_expiry,
    check_not_before,
    check_issued_at,
    check_required_claims,
    check_claim_types,
)
