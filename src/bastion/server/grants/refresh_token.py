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
from bastion.protocol.errors import InvalidGrant, OAuthError, UnauthorizedClient
from bastion.protocol.rfc6749.params import require, single
from bastion.protocol.rfc6749.scope import narrowed_scope, parse_scope
from bastion.server import issuance
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import Authentication, UserGrant, token_hash
from bastion.store import refresh_tokens
from bastion.store.refresh_tokens import RefreshTokenRow
from bastion.store.users import UserRow

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


async def _check_narrowing(
    ctx: ServerContext, client: Client, presented_hash: str, requested: tuple[str, ...], now: int
) -> None:
    found = await refresh_tokens.get(ctx.database, presented_hash)
    if found is None or found.client_id != client.client_id or found.revoked_at is not None:
        return
    if found.expires_at <= now or found.family_expires_at <= now:
        return
    narrowed_scope(requested, tuple(found.scope.split()))


async def refresh_token_grant(ctx: ServerContext, client: Client, params: dict[str, list[str]]) -> dict[str, Any]:
    presented_hash = token_hash(require(params, "refresh_token"))
    requested = parse_scope(single(params, "scope"))
    # The plan holds the signing keys: after the spend nothing touches the database or the cache.
    plan = await issuance.plan_tokens(ctx, client, params)
    now = plan.now
    if requested:
        # RFC 6749 §6: a narrowed scope is checked against the token's before the token is spent
        # (a spent token's family keeps its scope: the check holds for the successor it may take
        # over; a token that is not this client's or not live is refused below, with its reason).
        await _check_narrowing(ctx, client, presented_hash, requested, now)
    # One statement (PostgreSQL): the live token is spent and its successor stored with it, so a
    # concurrent reuse that revokes the family always finds (and revokes) the successor too. The
    # tokens are signed after, for the spent token's user.
    successor = plan.successor(ctx, client)
    try:
        spent = await refresh_tokens.rotate(ctx.database, presented_hash, client.client_id, now, successor)
        if spent is None:
            spent = await _take_over_unanswered(ctx, client, presented_hash, requested, now, successor)
        if spent is None:
            await _read_live(ctx, client, presented_hash, now)  # raises the reason it was not live
            raise InvalidGrant(_INVALID, detail="refresh token not rotated")
        issued, grant = _sign(ctx, client, plan, requested, *spent)
    except OAuthError:
        raise
    except Exception:
        # The rotation may have been committed and its answer lost (see `server.unanswered`).
        await ctx.unanswered.note(presented_hash, successor.token_hash)
        raise
    issuance.audit_user_tokens_issued(client, GRANT_TYPE, grant, issued)
    return issued.response


async def _take_over_unanswered(
    ctx: ServerContext,
    client: Client,
    presented_hash: str,
    requested: tuple[str, ...],
    now: int,
    successor: refresh_tokens.Successor,
) -> tuple[RefreshTokenRow, UserRow] | None:
    """A token presented again after a rotation the server failed to answer: its successor,
    if still live, is rotated in its place (`server.unanswered`); None otherwise."""
    unanswered = await ctx.unanswered.take(presented_hash)
    if unanswered is None:
        return None
    if requested:  # the successor's scope is the presented token's (the family keeps it)
        presented = await refresh_tokens.get(ctx.database, presented_hash)
        if presented is not None:
            narrowed_scope(requested, tuple(presented.scope.split()))
    spent = await refresh_tokens.rotate(ctx.database, unanswered, client.client_id, now, successor)
    if spent is not None:
        audit("refresh_token_retry_answered", client_id=client.client_id, sub=spent[0].sub, family=spent[0].family)
    return spent


def _sign(
    ctx: ServerContext,
    client: Client,
    plan: issuance.Plan,
    requested: tuple[str, ...],
    row: RefreshTokenRow,
    user_row: UserRow,
) -> tuple[issuance.Issued, UserGrant]:
    """The tokens of a won rotation, signed with the plan's keys (no I/O)."""
    original = tuple(row.scope.split())
    scope = narrowed_scope(requested, original)
    grant = UserGrant(
        users.User.from_row(user_row), Authentication.stored(row.sid, row.auth_time, row.amr, row.acr), scope
    )
    # RFC 6749 §6: the new refresh token keeps the original scope, whatever this request narrowed.
    issued = issuance.sign_user_tokens(
        ctx,
        client,
        grant,
        plan,
        refresh_scope=original,
        family=row.family,
        family_expires_at=row.family_expires_at,
    )
    return issued, grant


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
