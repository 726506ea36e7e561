"""Minting our JWT access tokens (RFC 9068) and reading them back for introspection/revocation."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from bastion.protocol.errors import ServerError
from bastion.protocol.rfc9068 import ACCESS_TOKEN_TYP, AccessTokenClaims, access_token_header
from bastion.server.clients import Client
from bastion.server.context import ServerContext


async def issue_access_token(
    ctx: ServerContext,
    client: Client,
    *,
    subject: str,
    audience: str,
    scope: tuple[str, ...],
    extra: dict[str, Any] | None = None,
) -> tuple[str, int, AccessTokenClaims]:
    """Sign an access token; returns (token, expires_in, claims)."""
    key = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
    if key is None:
        raise ServerError(detail=f"no active {ctx.settings.access_token_algorithm} signing key")
    lifetime = 60 * (client.token_lifetime or ctx.settings.access_token_lifetime)
    now = int(time.time())
    claims = AccessTokenClaims(
        iss=ctx.issuer,
        sub=subject,
        aud=audience,
        client_id=client.client_id,
        iat=now,
        exp=now + lifetime,
        jti=secrets.token_urlsafe(16),
        scope=scope,
        extra=extra or {},
    )
    token = jwt.encode(claims.as_dict(), key.private_key, algorithm=key.alg, headers=access_token_header(key.kid))
    return token, lifetime, claims


async def read_access_token(ctx: ServerContext, token: str) -> dict[str, Any] | None:
    """Verify one of our own access tokens; None if it is not one, or invalid or expired."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid = header.get("kid")
    if header.get("typ") != ACCESS_TOKEN_TYP or not isinstance(kid, str):
        return None
    schedule = await ctx.keyring.public_key(kid)
    if schedule is None or header.get("alg") != schedule.alg:
        return None
    try:
        key = jwt.PyJWK(schedule.public_jwk).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[schedule.alg],
            issuer=ctx.issuer,
            options={"verify_aud": False, "require": ["exp", "iat", "jti", "client_id"]},
            leeway=ctx.settings.clock_leeway,
        )
    except jwt.PyJWTError:
        return None
    return claims
