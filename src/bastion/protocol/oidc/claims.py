"""ID token claims and the claims released per scope."""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from typing import Any

from bastion.protocol.jose.algorithms import hash_function

# The ID token says `typ: JWT`, never `at+jwt`, so neither can pass as the other (RFC 9068 §2.1).
ID_TOKEN_TYP = "JWT"  # noqa: S105 - a media type, not a password
# Authentication context classes we assert (OpenID Connect Core §2 `acr`).
ACR_PASSWORD = "urn:bastion:acr:password"  # noqa: S105 - an acr URN, not a password
ACR_MFA = "urn:bastion:acr:mfa"

# OpenID Connect Core §5.4: the claims each standard scope releases.
SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
}

def id_token_header(kid: str) -> dict[str, str]:
    return {"typ": ID_TOKEN_TYP, "kid": kid}


def at_hash(access_token: str, alg: str) -> str:
    """§3.1.3.6: base64url of the left half of the hash of the access token, the hash named by
    the ID token's `alg` (RS256 -> SHA-256)."""
    digest = hash_function(alg)(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def scope_claims(user_claims: Mapping[str, Any], scopes: Collection[str]) -> dict[str, Any]:
    """The user claims released by the granted scopes (absent values are left out)."""
    released: dict[str, Any] = {}
    for scope in scopes:
        for name in SCOPE_CLAIMS.get(scope, ()):
            if user_claims.get(name) not in (None, ""):
                released[name] = user_claims[name]
    return released


def id_token_claims(
    *,
    issuer: str,
    subject: str,
    audience: str,
    issued_at: int,
    lifetime: int,
    auth_time: int,
    nonce: str | None,
    access_token_hash: str | None,
    amr: Collection[str],
    acr: str,
    sid: str,
    user_claims: Mapping[str, Any],
) -> dict[str, Any]:
    """The ID token payload (§2): `azp` is omitted, as there is one audience equal to the client."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": issued_at + lifetime,
        "iat": issued_at,
        "auth_time": auth_time,
        "amr": list(amr),
        "acr": acr,
        "sid": sid,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token_hash is not None:
        claims["at_hash"] = access_token_hash
    for name, value in user_claims.items():
        claims.setdefault(name, value)
    return claims
