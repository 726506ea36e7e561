"""Device Authorization Grant at the token endpoint (RFC 8628 §3.4, §3.5).

The device polls with its device code. Each poll is judged in this order: the code must exist
and belong to this client (`invalid_grant`, §3.4), must not have been redeemed (`invalid_grant`)
nor expired (`expired_token`); a poll sooner than the interval after the previous one gets
`slow_down` and a 5-second longer interval; then the user's decision answers
`authorization_pending`, `access_denied`, or the tokens. The code is spent with a conditional
UPDATE, so of two simultaneous redemptions exactly one gets tokens.
"""

from __future__ import annotations

import time
from typing import Any

from bastion.identity import users
from bastion.protocol.errors import AccessDenied, InvalidGrant
from bastion.protocol.rfc6749.params import require
from bastion.protocol.rfc8628 import (
    GRANT_TYPE,
    SLOW_DOWN_INCREMENT,
    AuthorizationPending,
    ExpiredToken,
    SlowDown,
    poll_timing,
)
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import (
    Authentication,
    UserGrant,
    audit_user_tokens_issued,
    issued_to,
    plan_tokens,
    sign_user_tokens,
    token_hash,
    wants_refresh_token,
)
from bastion.store import device_codes, refresh_tokens, transaction
from bastion.store.device_codes import DeviceCodeRow

_INVALID = "the device code is invalid or was already used"


def check_device_code(row: DeviceCodeRow | None, client: Client, now: int) -> DeviceCodeRow:
    """The code exists, was issued to this client, is unspent and fresh."""
    row = issued_to(row, client, _INVALID, "device code")
    if row.redeemed_at is not None:
        raise InvalidGrant(_INVALID, detail="device code already redeemed")
    if row.expires_at <= now:
        raise ExpiredToken("the device code has expired; start a new device authorization request")
    return row


async def check_poll_interval(ctx: ServerContext, row: DeviceCodeRow, now_ms: int) -> None:
    """RFC 8628 §3.5: `slow_down` for a poll sooner than the interval; the first is never early."""
    timing = poll_timing(last_poll_ms=row.last_poll_at, interval=row.interval, now_ms=now_ms)
    async with transaction(ctx.database) as tx:
        on_time = not timing.slow_down and await device_codes.record_poll(
            tx, row.device_code_hash, row.last_poll_at, now_ms, timing.interval
        )
        if not on_time:
            # Early, or another poll of the same code landed between our read and our write
            # (which makes this one early too): the interval grows for this and later polls.
            await device_codes.slow_down(tx, row.device_code_hash, now_ms, SLOW_DOWN_INCREMENT)
    if not on_time:
        interval = row.interval + SLOW_DOWN_INCREMENT
        raise SlowDown(f"polling too fast; wait at least {interval} seconds between requests")


def check_decision(row: DeviceCodeRow) -> None:
    """Pending and denied requests end the poll here (RFC 8628 §3.5)."""
    if row.status == device_codes.DENIED:
        raise AccessDenied("the user denied the request")
    if row.status != device_codes.APPROVED:
        raise AuthorizationPending("the user has not yet approved the request")


async def device_code_grant(ctx: ServerContext, client: Client, params: dict[str, list[str]]) -> dict[str, Any]:
    device_code = require(params, "device_code")
    now_ms = int(time.time() * 1000)
    now = now_ms // 1000
    code_hash = token_hash(device_code)
    found = await device_codes.get(ctx.database, code_hash)
    row = check_device_code(found, client, now)
    await check_poll_interval(ctx, row, now_ms)
    check_decision(row)
    user = await users.get_user(ctx.database, row.sub) if row.sub else None
    if user is None or not user.enabled or row.sid is None or row.auth_time is None:
        raise InvalidGrant(_INVALID, detail="user disabled or deleted")
    scope = tuple(row.scope.split())
    grant = UserGrant(user, Authentication.stored(row.sid, row.auth_time, row.amr, row.acr), scope)
    refresh_scope = scope if wants_refresh_token(client, scope) else None
    issued = sign_user_tokens(ctx, client, grant, await plan_tokens(ctx, client, params), refresh_scope=refresh_scope)
    async with transaction(ctx.database) as tx:
        spent = await device_codes.redeem(tx, code_hash, now)
        if spent and issued.refresh_row is not None:
            await refresh_tokens.insert(tx, issued.refresh_row)
    if not spent:
        raise InvalidGrant(_INVALID, detail="device code redeemed concurrently")
    audit_user_tokens_issued(client, GRANT_TYPE, grant, issued)
    return issued.response
