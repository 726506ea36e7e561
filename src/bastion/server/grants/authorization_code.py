"""Authorization Code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6).

Every binding of the code is checked: client, redirect URI, PKCE verifier, expiry. The code is
spent with a conditional UPDATE, so of two simultaneous uses exactly one succeeds; a second use
fails and revokes every token issued from the code (RFC 6749 §4.1.2, RFC 9700 §4.5).
"""

from __future__ import annotations

import time
from typing import Any

from bastion.events import audit
from bastion.identity import users
from bastion.protocol.errors import InvalidGrant, InvalidRequest
from bastion.protocol.rfc6749.params import require, single
from bastion.protocol.rfc7636 import verify_code_verifier
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import (
    Authentication,
    UserGrant,
    audit_user_tokens_issued,
    issued_to,
    plan_tokens,
    revoke_issued,
    sign_user_tokens,
    token_hash,
    wants_refresh_token,
)
from bastion.store import codes, refresh_tokens
from bastion.store.codes import AuthorizationCodeRow

GRANT_TYPE = "authorization_code"
_INVALID = "the authorization code is invalid, expired or was already used"


async def _revoke_code_tokens(ctx: ServerContext, row: AuthorizationCodeRow) -> None:
    now = int(time.time())
    issued: list[tuple[str, str, int]] = []
    if row.access_jti and row.access_exp:
        issued.append((row.access_jti, row.client_id, row.access_exp))
    if row.refresh_family:
        issued += await refresh_tokens.revoke_family(ctx.database, row.refresh_family, now)
    await revoke_issued(ctx, issued)
    audit("authorization_code_replayed", client_id=row.client_id, sub=row.sub, family=row.refresh_family)


def check_code_bindings(row: AuthorizationCodeRow, client: Client, params: dict[str, list[str]], now: int) -> None:
    """The code was issued for this redirect URI and PKCE challenge, and is fresh."""
    if row.expires_at <= now:
        raise InvalidGrant(_INVALID, detail="code expired")
    # RFC 6749 §4.1.3: redirect_uri is REQUIRED if it was in the authorization request (always, here).
    redirect_uri = single(params, "redirect_uri")
    if redirect_uri is None:
        raise InvalidRequest("parameter redirect_uri is required")
    if redirect_uri != row.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    verify_code_verifier(single(params, "code_verifier"), row.code_challenge)


async def authorization_code_grant(ctx: ServerContext, client: Client, params: dict[str, list[str]]) -> dict[str, Any]:
    code = require(params, "code")
    now = int(time.time())
    code_hash = token_hash(code)
    found, user_row = await codes.with_user(ctx.database, code_hash)
    row = issued_to(found, client, _INVALID, "code")
    if row.used_at is not None:
        await _revoke_code_tokens(ctx, row)
        raise InvalidGrant(_INVALID, detail="code replayed")
    check_code_bindings(row, client, params, now)
    user = None if user_row is None else users.User.from_row(user_row)
    if user is None or not user.enabled:
        raise InvalidGrant(_INVALID, detail="user disabled or deleted")
    scope = tuple(row.scope.split())
    grant = UserGrant(user, Authentication.stored(row.sid, row.auth_time, row.amr, row.acr), scope, row.nonce)
    # Sign first, then spend the code and store what was issued in one transaction: a replay
    # that loses the race always finds the tokens to revoke.
    refresh_scope = scope if wants_refresh_token(client, scope) else None
    issued = sign_user_tokens(ctx, client, grant, await plan_tokens(ctx, client, params), refresh_scope=refresh_scope)
    family = issued.refresh_row.family if issued.refresh_row is not None else None
    spent = await codes.spend(
        ctx.database,
        code_hash,
        now,
        access_jti=issued.access_jti,
        access_exp=issued.access_exp,
        family=family,
        refresh=issued.refresh_row,
    )
    if not spent:
        fresh = await codes.get(ctx.database, code_hash)
        if fresh is not None:
            await _revoke_code_tokens(ctx, fresh)
        raise InvalidGrant(_INVALID, detail="code used concurrently")
    audit_user_tokens_issued(client, GRANT_TYPE, grant, issued)
    return issued.response
