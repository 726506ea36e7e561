"""Queries of the Device Authorization Grant (RFC 8628): create, find, poll, decide, redeem.

Every change of state is a conditional UPDATE whose row count says who won, so two concurrent
polls, decisions or redemptions give exactly one winner on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bastion.store.models import DeviceCodeRow

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


async def purge_expired(session: AsyncSession, before: int) -> None:
    """Forget device codes that expired before `before` (kept a while to answer expired_token)."""
    await session.execute(delete(DeviceCodeRow).where(DeviceCodeRow.expires_at <= before))


async def get_by_device_code(session: AsyncSession, device_code_hash: str) -> DeviceCodeRow | None:
    return await session.get(DeviceCodeRow, device_code_hash)


async def get_pending_by_user_code(session: AsyncSession, user_code: str, now: int) -> DeviceCodeRow | None:
    """The live, undecided request with this (normalised) user code."""
    result = await session.execute(
        select(DeviceCodeRow).where(
            DeviceCodeRow.user_code == user_code,
            DeviceCodeRow.status == PENDING,
            DeviceCodeRow.expires_at > now,
        )
    )
    return result.scalar_one_or_none()


async def record_poll(
    session: AsyncSession, device_code_hash: str, previous_ms: int | None, now_ms: int, interval: int
) -> bool:
    """Set the time of the last poll (and the interval) if nobody polled since `previous_ms`."""
    previous = (
        DeviceCodeRow.last_poll_at.is_(None) if previous_ms is None else DeviceCodeRow.last_poll_at == previous_ms
    )
    result = await session.execute(
        update(DeviceCodeRow)
        .where(DeviceCodeRow.device_code_hash == device_code_hash, previous)
        .values(last_poll_at=now_ms, interval=interval)
    )
    return _count(result) == 1


async def slow_down(session: AsyncSession, device_code_hash: str, now_ms: int, increment: int) -> None:
    """Record an early poll: its time, and an interval longer by `increment` seconds."""
    await session.execute(
        update(DeviceCodeRow)
        .where(DeviceCodeRow.device_code_hash == device_code_hash)
        .values(last_poll_at=now_ms, interval=DeviceCodeRow.interval + increment)
    )


async def approve(
    session: AsyncSession,
    user_code: str,
    *,
    sub: str,
    sid: str,
    auth_time: int,
    amr: str,
    acr: str,
    now: int,
) -> bool:
    """Record the user's approval of a live pending request; False if it was decided or expired."""
    result = await session.execute(
        update(DeviceCodeRow)
        .where(DeviceCodeRow.user_code == user_code, DeviceCodeRow.status == PENDING, DeviceCodeRow.expires_at > now)
        .values(status=APPROVED, sub=sub, sid=sid, auth_time=auth_time, amr=amr, acr=acr, decided_at=now)
    )
    return _count(result) == 1


async def deny(session: AsyncSession, user_code: str, *, sub: str, now: int) -> bool:
    """Record the user's refusal of a live pending request; False if it was decided or expired."""
    result = await session.execute(
        update(DeviceCodeRow)
        .where(DeviceCodeRow.user_code == user_code, DeviceCodeRow.status == PENDING, DeviceCodeRow.expires_at > now)
        .values(status=DENIED, sub=sub, decided_at=now)
    )
    return _count(result) == 1


async def redeem(session: AsyncSession, device_code_hash: str, now: int) -> bool:
    """Spend an approved device code; exactly one caller ever gets True."""
    result = await session.execute(
        update(DeviceCodeRow)
        .where(
            DeviceCodeRow.device_code_hash == device_code_hash,
            DeviceCodeRow.status == APPROVED,
            DeviceCodeRow.redeemed_at.is_(None),
        )
        .values(redeemed_at=now)
    )
    return _count(result) == 1
