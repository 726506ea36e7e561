"""What a validator trusts about one issuer: its identifier and the policy for its tokens."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANY_AUDIENCE", "DEFAULT_LEEWAY", "TrustedIssuer"]

# RFC 9068 §4 / RFC 7519 §4.1.4 allow "some small leeway" for clock skew.
DEFAULT_LEEWAY = 30.0
# The audience policy of an authorization server reading its own tokens (see TrustedIssuer).
ANY_AUDIENCE = None


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer identifier and the audience expected in its tokens.

    `audience` is this resource server's identifier (RFC 9068 §4: `aud` must contain it). Only
    the authorization server reading its own tokens (userinfo, introspection, revocation) sets
    it to `ANY_AUDIENCE`: it issued them for every resource it serves, and an introspecting
    caller is then limited to its own audiences by the endpoint. `aud` must still be present.

    `legacy` accepts `typ: JWT` (or no typ) for providers that do not yet type their access
    tokens (RFC 9068 §4 otherwise requires `at+jwt`); ID-token look-alikes are still refused.
    """

    issuer: str
    audience: str | None
    legacy: bool = False
    leeway: float = DEFAULT_LEEWAY
