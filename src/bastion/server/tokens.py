"""Minting our JWT access tokens (RFC 9068), and reading our own tokens back.

Reading goes through the shared protocol core (`bastion.protocol.rfc9068`), the validator the
guard runs, so userinfo, introspection and revocation apply every rule a resource server does;
only the keys come from our own key ring, and the audience is any (`ANY_AUDIENCE`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from bastion.events import compact_json
from bastion.keys import SigningKey
from bastion.keys.signer import JwsSigner
from bastion.protocol.errors import InvalidToken, ServerError
from bastion.protocol.jose import KeySet, TrustedKey, key_from_jwk
from bastion.protocol.rfc9068 import (
    ANY_AUDIENCE,
    AccessToken,
    AccessTokenClaims,
    AccessTokenValidator,
    TrustedIssuer,
    access_token_header,
)
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.metrics import count_token_failure, failure_reason

# PyJWT's payload encoding (`json.dumps(payload, separators=(",", ":"))`), built once.
_ENCODE_CLAIMS = compact_json()

_SIGNERS: dict[tuple[str, str], JwsSigner] = {}


def jws_signer(key: SigningKey, kind: str, header: Callable[[str], dict[str, str]]) -> JwsSigner:
    """The signer of `key` for one kind of token (`header(kid)` its JOSE header), made once per
    key and kind (and again if the kid's key object changes)."""
    signer = _SIGNERS.get((key.kid, kind))
    if signer is None or signer.private_key is not key.private_key:
        if len(_SIGNERS) > 64:
            _SIGNERS.clear()
        signer = _SIGNERS[key.kid, kind] = JwsSigner(key, header(key.kid), _ENCODE_CLAIMS)
    return signer


def access_token_signer(key: SigningKey) -> JwsSigner:
    return jws_signer(key, "access_token", access_token_header)


def access_lifetime(ctx: ServerContext, client: Client) -> int:
    """Seconds an access token for `client` lives."""
    return 60 * (client.token_lifetime or ctx.settings.access_token_lifetime)


def new_jti() -> str:
    return secrets.token_urlsafe(16)


async def issue_access_token(
    ctx: ServerContext,
    client: Client,
    *,
    subject: str,
    audience: str,
    scope: tuple[str, ...],
) -> tuple[str, int, AccessTokenClaims]:
    """Sign an access token with the active key; returns (token, expires_in, claims)."""
    key = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
    if key is None:
        raise ServerError(detail=f"no active {ctx.settings.access_token_algorithm} signing key")
    return sign_access_token(ctx, client, key, subject=subject, audience=audience, scope=scope)


def sign_access_token(
    ctx: ServerContext,
    client: Client,
    key: SigningKey,
    *,
    subject: str,
    audience: str,
    scope: tuple[str, ...],
    extra: dict[str, Any] | None = None,
    jti: str | None = None,
    issued_at: int | None = None,
) -> tuple[str, int, AccessTokenClaims]:
    """Sign an access token with `key`, no I/O; returns (token, expires_in, claims). `jti` and
    `issued_at` are chosen here unless the caller chose them already (a refresh records them
    with the rotation before it signs)."""
    lifetime = access_lifetime(ctx, client)
    now = int(time.time()) if issued_at is None else issued_at
    claims = AccessTokenClaims(
        iss=ctx.issuer,
        sub=subject,
        aud=audience,
        client_id=client.client_id,
        iat=now,
        exp=now + lifetime,
        jti=jti or new_jti(),
        scope=scope,
        extra=extra or {},
    )
    token = access_token_signer(key).sign(claims.as_dict())
    return token, lifetime, claims


_TRUSTED: dict[str, tuple[dict[str, Any], TrustedKey | None]] = {}


async def own_key(ctx: ServerContext, kid: object) -> TrustedKey | None:
    """One of our published keys by `kid`, prepared for verification once per key (its JWK
    names its `alg`, so it verifies that algorithm only, RFC 8725 §3.1)."""
    schedule = await ctx.keyring.public_key(kid) if isinstance(kid, str) else None
    if schedule is None:
        return None
    known = _TRUSTED.get(schedule.kid)
    if known is None or known[0] != schedule.public_jwk:
        if len(_TRUSTED) > 64:
            _TRUSTED.clear()
        known = _TRUSTED[schedule.kid] = (schedule.public_jwk, key_from_jwk(schedule.public_jwk))
    return known[1]


async def read_access_token(ctx: ServerContext, token: str, *, endpoint: str | None = None) -> AccessToken | None:
    """One of our own access tokens, valid by every RFC 9068 §4 / RFC 8725 rule the guard
    applies, for any audience; None when it is not (revocation is the caller's check).

    With `endpoint`, a refusal is counted in `bastion_token_validation_failures_total`.
    """
    # ANY_AUDIENCE: we issued it for every resource we serve; introspection then filters by the
    # caller's audiences (RFC 7662 §4).
    validator = AccessTokenValidator([TrustedIssuer(ctx.issuer, ANY_AUDIENCE, leeway=ctx.settings.clock_leeway)])
    try:
        # The header checks run first: a refused header costs no key lookup.
        key = await own_key(ctx, validator.header(token).get("kid"))
        if key is None:
            if endpoint is not None:
                count_token_failure(endpoint, "unknown_key")
            return None
        validator.set_keys(ctx.issuer, KeySet((key,)))
        return validator.verify(token, time.time())
    except InvalidToken as error:
        if endpoint is not None:
            count_token_failure(endpoint, failure_reason(error))
        return None
