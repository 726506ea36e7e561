"""Checks on a client assertion's header and (verified) claims, RFC 7523 §3."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.protocol.errors import InvalidClient
from bastion.protocol.jose.algorithms import ASSERTION_ALGORITHMS

# The longest jti the replay store records (the `jti` column of `used_assertions`).
MAX_JTI_LENGTH = 256


@dataclass(frozen=True)
class AssertionPolicy:
    """What this server accepts: the issuer as `aud`, optionally the token endpoint (compat)."""

    issuer: str
    token_endpoint: str
    accept_token_endpoint_audience: bool
    max_lifetime: int
    leeway: int = 30


def check_assertion_header(header: Mapping[str, Any]) -> str:
    """Return the assertion's `alg` if it is on the allowlist.

    Raises:
        InvalidClient: `alg` missing, `none`, HMAC or unknown; or `crit` present (RFC 7515 §4.1.11).
    """
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASSERTION_ALGORITHMS:
        raise InvalidClient("client assertion algorithm not allowed", detail=f"alg={alg!r}")
    if "crit" in header:
        raise InvalidClient("client assertion has unsupported critical headers")
    return alg


def _optional_time(claims: Mapping[str, Any], name: str) -> int | None:
    """An optional NumericDate claim (RFC 7519 §2), in whole seconds as `exp` must be here: a
    value of another type is refused rather than ignored, so it cannot dodge its check."""
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidClient(f"client assertion {name} must be a NumericDate in whole seconds")
    return value


def check_assertion_claims(
    claims: Mapping[str, Any], client_id: str, policy: AssertionPolicy, now: int
) -> tuple[str, int]:
    """Check RFC 7523 §3 claims of a signature-verified assertion; return (jti, exp).

    Raises:
        InvalidClient: with a description naming the failed rule.
    """
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("client assertion iss and sub must both be the client_id (RFC 7523 §3)")
    audience = claims.get("aud")
    if not isinstance(audience, str):
        raise InvalidClient("client assertion aud must be a single value: the issuer identifier")
    allowed = {policy.issuer}
    if policy.accept_token_endpoint_audience:
        allowed.add(policy.token_endpoint)
    if audience not in allowed:
        raise InvalidClient("client assertion aud must be the issuer identifier", detail=f"aud={audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise InvalidClient("client assertion exp is required (RFC 7523 §3)")
    if exp + policy.leeway < now:
        raise InvalidClient("client assertion has expired")
    iat = _optional_time(claims, "iat")
    # RFC 7519 §4.1.6: iat is when the client made the assertion; one made later than now (past
    # the clock leeway) is pre-minted and would outlive the max_lifetime measured from its iat.
    if iat is not None and iat - policy.leeway > now:
        raise InvalidClient("client assertion iat is in the future")
    if exp - min(iat if iat is not None else now, now) > policy.max_lifetime:
        raise InvalidClient(f"client assertion lifetime exceeds {policy.max_lifetime} seconds")
    nbf = _optional_time(claims, "nbf")
    if nbf is not None and nbf - policy.leeway > now:
        raise InvalidClient("client assertion is not yet valid")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidClient("client assertion jti is required for replay protection")
    # The replay store must be able to record it: a NUL or an overlong value failed there (a 500
    # on PostgreSQL, silently accepted on SQLite).
    if len(jti) > MAX_JTI_LENGTH or not jti.isprintable():
        raise InvalidClient(f"client assertion jti must be 1-{MAX_JTI_LENGTH} printable characters")
    return jti, exp
