"""ORM queries of the browser flows' rarer paths: touching and ending sessions, ending a pending
request, codes and refresh-token families after a replay.

The hot paths go straight to the driver: the pages' reads in `store.lookups`, a login's writes in
`store.logins`, and the token endpoint's spending of codes and refresh tokens (a conditional
UPDATE whose row count says who won, so two simultaneous uses yield exactly one success) in
`store.grants`.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bastion.store.models import (
    AuthorizationCodeRow,
    AuthorizationRequestRow,
    BrowserSessionRow,
    RefreshTokenRow,
)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


# Browser sessions


async def touch_browser_session(session: AsyncSession, id_hash: str, now: int) -> None:
    await session.execute(
        update(BrowserSessionRow).where(BrowserSessionRow.id_hash == id_hash).values(last_seen_at=now)
    )


async def end_browser_session(session: AsyncSession, id_hash: str) -> None:
    await session.execute(delete(AuthorizationRequestRow).where(AuthorizationRequestRow.session_hash == id_hash))
    await session.execute(delete(BrowserSessionRow).where(BrowserSessionRow.id_hash == id_hash))


# Pending authorization requests


async def delete_pending_request(session: AsyncSession, request_id: str) -> None:
    await session.execute(delete(AuthorizationRequestRow).where(AuthorizationRequestRow.id == request_id))


# Codes and refresh tokens


async def get_code(session: AsyncSession, code_hash: str) -> AuthorizationCodeRow | None:
    return await session.get(AuthorizationCodeRow, code_hash)


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshTokenRow | None:
    return await session.get(RefreshTokenRow, token_hash)


async def revoke_family(session: AsyncSession, family: str, now: int) -> list[tuple[str, str, int]]:
    """Revoke every token of a refresh-token family; returns the (jti, client_id, exp) of the
    access tokens issued alongside, so they can be revoked too."""
    rows = await session.scalars(select(RefreshTokenRow).where(RefreshTokenRow.family == family))
    issued = [(r.access_jti, r.client_id, r.access_exp) for r in rows if r.access_jti and r.access_exp]
    await session.execute(
        update(RefreshTokenRow)
        .where(RefreshTokenRow.family == family, RefreshTokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return [(jti, client_id, exp) for jti, client_id, exp in issued if jti is not None and exp is not None]
