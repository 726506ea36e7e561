"""Queries the server and the CLI share. Each function takes a session and does one thing."""

from __future__ import annotations

import json

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bastion.keys.keyring import KeySchedule
from bastion.store.models import (
    ClientRow,
    ClientSecretRow,
    RevokedTokenRow,
    SigningKeyRow,
    UsedAssertionRow,
)


async def get_client(session: AsyncSession, client_id: str) -> ClientRow | None:
    return await session.get(ClientRow, client_id)


async def list_clients(session: AsyncSession) -> list[ClientRow]:
    return list((await session.scalars(select(ClientRow).order_by(ClientRow.created_at))).all())


async def valid_secret_hashes(session: AsyncSession, client_id: str, now: int) -> list[str]:
    rows = await session.scalars(select(ClientSecretRow).where(ClientSecretRow.client_id == client_id))
    return [row.secret_hash for row in rows if row.expires_at is None or row.expires_at > now]


async def add_secret(session: AsyncSession, client_id: str, secret_hash: str, now: int) -> None:
    session.add(ClientSecretRow(client_id=client_id, secret_hash=secret_hash, created_at=now, expires_at=None))


async def expire_secrets(session: AsyncSession, client_id: str, at: int) -> None:
    """End every current secret of the client at `at` (rotation overlap).

    A secret still inside an earlier rotation's overlap ends at `at` too when that is sooner:
    a rotation without overlap (a leaked secret) must stop every earlier secret at once.
    """
    await session.execute(
        update(ClientSecretRow)
        .where(
            ClientSecretRow.client_id == client_id,
            or_(ClientSecretRow.expires_at.is_(None), ClientSecretRow.expires_at > at),
        )
        .values(expires_at=at)
    )


async def key_schedules(session: AsyncSession) -> list[KeySchedule]:
    rows = await session.scalars(select(SigningKeyRow).order_by(SigningKeyRow.activates_at))
    return [KeySchedule(row.kid, row.alg, json.loads(row.public_jwk), row.activates_at, row.retired_at) for row in rows]


async def encrypted_private_key(session: AsyncSession, kid: str) -> bytes | None:
    row = await session.get(SigningKeyRow, kid)
    return None if row is None else row.private_key


async def record_revocation(session: AsyncSession, jti: str, client_id: str, exp: int, now: int) -> None:
    if await session.get(RevokedTokenRow, jti) is None:
        session.add(RevokedTokenRow(jti=jti, client_id=client_id, exp=exp, revoked_at=now))


async def is_revoked(session: AsyncSession, jti: str) -> bool:
    return await session.get(RevokedTokenRow, jti) is not None


async def revocations_since(session: AsyncSession, since: int, now: int) -> list[RevokedTokenRow]:
    rows = await session.scalars(
        select(RevokedTokenRow)
        .where(RevokedTokenRow.revoked_at >= since, RevokedTokenRow.exp > now)
        .order_by(RevokedTokenRow.revoked_at)
        .limit(10_000)
    )
    return list(rows.all())


# An assertion is accepted until exp + clock_leeway, so its jti must be remembered that long.
# 300 s is the largest clock_leeway Settings accepts; forgetting a jti at exp let an assertion
# be replayed inside the leeway window (RFC 7523 §3 item 7).
ASSERTION_REPLAY_MARGIN = 300


async def use_assertion(session: AsyncSession, client_id: str, jti: str, exp: int, now: int) -> bool:
    """Record a client assertion's jti; False if it was already used (a replay)."""
    await session.execute(delete(UsedAssertionRow).where(UsedAssertionRow.exp < now - ASSERTION_REPLAY_MARGIN))
    session.add(UsedAssertionRow(client_id=client_id, jti=jti, exp=exp))
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def purge_expired(session: AsyncSession, now: int) -> None:
    await session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.exp < now - 3600))
    await session.execute(delete(UsedAssertionRow).where(UsedAssertionRow.exp < now - ASSERTION_REPLAY_MARGIN))
