"""Device codes (`device_codes`) of the Device Authorization Grant (RFC 8628): the only address
of those rows: start, find, poll, decide, redeem.

Every change of state is a conditional UPDATE whose returned row says who won, so two concurrent
polls, decisions or redemptions give exactly one winner on SQLite and PostgreSQL. A new code
whose user code collides with a live one is not stored (`ON CONFLICT DO NOTHING`) and the
caller draws another.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update

from bastion.store._sql import Executor, Sql, inserting, purging, record, rows, transaction, values
from bastion.store.models import device_codes

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"


@dataclass(slots=True, frozen=True)
class DeviceCodeRow:
    device_code_hash: str  # SHA-256 hex
    user_code: str  # normalised, no dash
    client_id: str
    scope: str  # space-separated
    status: str  # PENDING | APPROVED | DENIED
    # Who approved, and how they signed in (for the ID token's sid, auth_time, amr, acr).
    sub: str | None
    sid: str | None
    auth_time: int | None
    amr: str | None
    acr: str | None
    created_at: int
    expires_at: int
    interval: int  # seconds; grows by 5 on each slow_down
    last_poll_at: int | None  # milliseconds
    decided_at: int | None
    redeemed_at: int | None


def pending(
    device_code_hash: str, user_code: str, client_id: str, scope: str, *, now: int, lifetime: int, interval: int
) -> DeviceCodeRow:
    """A new device code (RFC 8628 §3.2): nobody has decided, polled or redeemed it yet."""
    return DeviceCodeRow(
        device_code_hash, user_code, client_id, scope, PENDING,
        None, None, None, None, None,  # sub, sid, auth_time, amr, acr
        now, now + lifetime, interval,
        None, None, None,  # last_poll_at, decided_at, redeemed_at
    )  # fmt: skip


_c = device_codes.c
_by_hash = _c.device_code_hash == bindparam("device_code_hash")
_live_pending = (_c.user_code == bindparam("user_code"), _c.status == PENDING, _c.expires_at > bindparam("now"))

_INSERT = inserting(device_codes, unless_conflict=True)
_PURGE = Sql(delete(device_codes).where(_c.expires_at <= bindparam("before")), "before")
_PURGE_BATCH = purging(device_codes, _c.expires_at <= bindparam("before"), "before")
_GET = Sql(select(device_codes).where(_by_hash), "device_code_hash")
_PENDING_BY_USER_CODE = Sql(select(device_codes).where(*_live_pending), "user_code", "now")
_RECORD_POLL = Sql(
    update(device_codes)
    .where(_by_hash, _c.last_poll_at.is_not_distinct_from(bindparam("previous_ms", type_=_c.last_poll_at.type)))
    .values(last_poll_at=bindparam("now_ms"), interval=bindparam("interval"))
    .returning(_c.device_code_hash),
    "device_code_hash",
    "previous_ms",
    "now_ms",
    "interval",
)
_SLOW_DOWN = Sql(
    update(device_codes)
    .where(_by_hash)
    .values(last_poll_at=bindparam("now_ms"), interval=_c.interval + bindparam("increment", type_=_c.interval.type)),
    "device_code_hash",
    "now_ms",
    "increment",
)
_APPROVE = Sql(
    update(device_codes)
    .where(*_live_pending)
    .values(
        status=APPROVED,
        sub=bindparam("sub"),
        sid=bindparam("sid"),
        auth_time=bindparam("auth_time"),
        amr=bindparam("amr"),
        acr=bindparam("acr"),
        decided_at=bindparam("now"),
    )
    .returning(_c.device_code_hash),
    "user_code",
    "now",
    "sub",
    "sid",
    "auth_time",
    "amr",
    "acr",
)
_DENY = Sql(
    update(device_codes)
    .where(*_live_pending)
    .values(status=DENIED, sub=bindparam("sub"), decided_at=bindparam("now"))
    .returning(_c.device_code_hash),
    "user_code",
    "now",
    "sub",
)
_REDEEM = Sql(
    update(device_codes)
    .where(_by_hash, _c.status == APPROVED, _c.redeemed_at.is_(None))
    .values(redeemed_at=bindparam("now"))
    .returning(_c.device_code_hash),
    "device_code_hash",
    "now",
)


async def start(on: Executor, code: DeviceCodeRow, *, purge_before: int) -> bool:
    """Forget codes that expired before `purge_before` and store `code`, in one transaction;
    False (nothing stored) if its user code or device code is taken."""
    async with transaction(on) as tx:
        await tx.rows(_PURGE, purge_before)
        return bool(await tx.rows(_INSERT, *values(code)))


async def get(on: Executor, device_code_hash: str) -> DeviceCodeRow | None:
    return await record(on, _GET, DeviceCodeRow, device_code_hash)


async def pending_by_user_code(on: Executor, user_code: str, now: int) -> DeviceCodeRow | None:
    """The live, undecided request with this (normalised) user code."""
    return await record(on, _PENDING_BY_USER_CODE, DeviceCodeRow, user_code, now)


async def record_poll(on: Executor, device_code_hash: str, previous_ms: int | None, now_ms: int, interval: int) -> bool:
    """Set the time of the last poll (and the interval) if nobody polled since `previous_ms`."""
    return bool(await rows(on, _RECORD_POLL, device_code_hash, previous_ms, now_ms, interval))


async def slow_down(on: Executor, device_code_hash: str, now_ms: int, increment: int) -> None:
    """Record an early poll: its time, and an interval longer by `increment` seconds (§3.5)."""
    await rows(on, _SLOW_DOWN, device_code_hash, now_ms, increment)


async def approve(
    on: Executor, user_code: str, *, sub: str, sid: str, auth_time: int, amr: str, acr: str, now: int
) -> bool:
    """Record the user's approval of a live pending request; False if it was decided or expired."""
    return bool(await rows(on, _APPROVE, user_code, now, sub, sid, auth_time, amr, acr))


async def deny(on: Executor, user_code: str, *, sub: str, now: int) -> bool:
    """Record the user's refusal of a live pending request; False if it was decided or expired."""
    return bool(await rows(on, _DENY, user_code, now, sub))


async def redeem(on: Executor, device_code_hash: str, now: int) -> bool:
    """Spend an approved device code; exactly one caller ever gets True."""
    return bool(await rows(on, _REDEEM, device_code_hash, now))


async def purge_expired(on: Executor, before: int, *, batch: int) -> int:
    """Forget at most `batch` codes that expired at or before `before` (the caller keeps them a
    while past expiry, so a late poll still gets expired_token, RFC 8628 §3.5); how many."""
    return len(await rows(on, _PURGE_BATCH, before, batch))
