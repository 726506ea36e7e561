"""What the guard trusts about one issuer once its metadata is known."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LEEWAY", "TrustedIssuer"]

# RFC 9068 §4 / RFC 7519 §4.1.4 allow "some small leeway" for clock skew.
DEFAULT_LEEWAY = 30.0


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer identifier and the audience this resource server expects from it.

    `legacy` accepts `typ: JWT` (or no typ) for providers that do not yet type their access
    tokens (RFC 9068 §4 otherwise requires `at+jwt`); ID-token look-alikes are still refused.
    """

    issuer: str
    audience: str
    legacy: bool = False
    leeway: float = DEFAULT_LEEWAY
