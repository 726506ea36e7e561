"""Refresh Token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

Refresh tokens are opaque, stored as SHA-256, and bound to the client they were issued to. Each
use rotates the token; presenting a rotated token revokes its whole family and is logged as a
security event. A sliding idle lifetime and an absolute lifetime bound the family. The scope may
be narrowed, never widened; the new refresh token keeps the original scope (§6).
"""

from __future__ import annotations

import time
from typing import Any

from bastion.events import audit
from bastion.identity import users
from bastion.protocol.errors import InvalidGrant, UnauthorizedClient
from bastion.protocol.rfc6749.params import require, single
from bastion.protocol.rfc6749.scope import narrowed_scope, parse_scope
from bastion.server import issuance
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import Authentication, UserGrant, token_hash
from bastion.store import refresh_tokens
from bastion.store.refresh_tokens import RefreshTokenRow

GRANT_TYPE = "refresh_token"
_INVALID = "the refresh token is invalid, expired or revoked"


async def revoke_refresh_family(ctx: ServerContext, row: RefreshTokenRow, event: str) -> None:
    issued = await refresh_tokens.revoke_family(ctx.database, row.family, int(time.time()))
    await issuance.revoke_issued(ctx, issued)
    audit(event, client_id=row.client_id, sub=row.sub, family=row.family)


def _check_presentable(row: RefreshTokenRow, user: users.User | None, now: int) -> None:
    """Refuse a token that is not live: revoked, expired, or its user disabled or deleted."""
    if row.revoked_at is not None:
        raise InvalidGrant(_INVALID, detail="refresh token revoked")
    if row.expires_at <= now or row.family_expires_at <= now:
        raise InvalidGrant(_INVALID, detail="refresh token expired")
    if user is None or not user.enabled:
        raise InvalidGrant(_INVALID, detail="user disabled or deleted")


async def _read_live(ctx: ServerContext, client: Client, presented_hash: str, now: int) -> RefreshTokenRow:
    """The presented token if a refresh may spend it; else the refusal, after revoking the
    family of a token presented again once rotated (RFC 9700 §4.14.2: reuse of a spent token,
    or two refreshes racing with one token, of which the loser is here)."""
    found, user_row = await refresh_tokens.with_user(ctx.database, presented_hash)
    row = issuance.issued_to(found, client, _INVALID, "refresh token")
    if row.rotated_at is not None and row.revoked_at is None:
        await revoke_refresh_family(ctx, row, "refresh_token_reuse_detected")
        raise InvalidGrant(_INVALID, detail="refresh token reused; family revoked")
    _check_presentable(row, None if user_row is None else users.User.from_row(user_row), now)
    return row


async def refresh_token_grant(ctx: ServerContext, client: Client, params: dict[str, list[str]]) -> dict[str, Any]:
    presented_hash = token_hash(require(params, "refresh_token"))
    requested = parse_scope(single(params, "scope"))
    plan = issuance.plan_tokens(ctx, client, params)
    now = plan.now
    if requested:
        # RFC 6749 §6: a narrowed scope is checked against the token's before the token is spent.
        narrowed_scope(requested, tuple((await _read_live(ctx, client, presented_hash, now)).scope.split()))
    # One statement (PostgreSQL): the live token is spent and its successor stored with it, so a
    # concurrent reuse that revokes the family always finds (and revokes) the successor too. The
    # tokens are signed after, for the spent token's user.
    successor = plan.successor(ctx, client)
    await issuance.load_signing_keys(ctx, client)  # before the spend: a failure after it loses the successor
    spent = await refresh_tokens.rotate(ctx.database, presented_hash, client.client_id, now, successor)
    if spent is None:
        await _read_live(ctx, client, presented_hash, now)  # raises the reason it was not live
        raise InvalidGrant(_INVALID, detail="refresh token not rotated")
    row, user_row = spent
    original = tuple(row.scope.split())
    scope = narrowed_scope(requested, original)
    grant = UserGrant(
        users.User.from_row(user_row), Authentication.stored(row.sid, row.auth_time, row.amr, row.acr), scope
    )
    # RFC 6749 §6: the new refresh token keeps the original scope, whatever this request narrowed.
    issued = await issuance.issue_user_tokens(
        ctx,
        client,
        grant,
        params,
        refresh_scope=original,
        family=row.family,
        family_expires_at=row.family_expires_at,
        plan=plan,
    )
    issuance.audit_user_tokens_issued(client, GRANT_TYPE, grant, issued)
    return issued.response


async def revoke_refresh_token(ctx: ServerContext, client: Client, token: str) -> bool:
    """RFC 7009 §2.1: revoking a refresh token revokes its family (and the access tokens issued
    with it). Returns False when the value is not one of our refresh tokens."""
    row = await refresh_tokens.get(ctx.database, token_hash(token))
    if row is None:
        return False
    if row.client_id != client.client_id:
        raise UnauthorizedClient("the token was not issued to this client")
    await revoke_refresh_family(ctx, row, "refresh_token_revoked")
    return True
