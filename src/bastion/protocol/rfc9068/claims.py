"""Header and claims of a JWT access token (RFC 9068 §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# RFC 9068 §2.1: "typ" MUST be "at+jwt" so the token cannot be confused with an ID token.
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type, not a password


def access_token_header(kid: str) -> dict[str, str]:
    return {"typ": ACCESS_TOKEN_TYP, "kid": kid}


@dataclass(frozen=True)
class AccessTokenClaims:
    """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti REQUIRED; scope when granted."""

    iss: str
    sub: str
    aud: str
    client_id: str
    iat: int
    exp: int
    jti: str
    scope: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "aud": self.aud,
            "exp": self.exp,
            "iat": self.iat,
            "jti": self.jti,
            "client_id": self.client_id,
        }
        if self.scope:
            claims["scope"] = " ".join(self.scope)
        claims.update(self.extra)
        return claims
