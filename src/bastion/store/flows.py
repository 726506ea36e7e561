"""Queries of the browser flows: sessions, pending requests, consents, codes, refresh tokens.

One-time things (codes, refresh tokens) are spent with a conditional UPDATE whose row count
says who won, so two simultaneous uses yield exactly one success on SQLite and PostgreSQL; the
token endpoint's own statements for that live in `store.grants`.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bastion.store.models import (
    AuthorizationCodeRow,
    AuthorizationRequestRow,
    BrowserSessionRow,
    ConsentRow,
    RefreshTokenRow,
)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


# Browser sessions


async def touch_browser_session(session: AsyncSession, id_hash: str, now: int) -> None:
    await session.execute(
        update(BrowserSessionRow).where(BrowserSessionRow.id_hash == id_hash).values(last_seen_at=now)
    )


async def replace_browser_session(session: AsyncSession, old_hash: str | None, new: BrowserSessionRow) -> None:
    """Rotate: the old id stops working and its pending requests move to the new one."""
    if old_hash is not None:
        await session.execute(
            update(AuthorizationRequestRow)
            .where(AuthorizationRequestRow.session_hash == old_hash)
            .values(session_hash=new.id_hash)
        )
        await session.execute(delete(BrowserSessionRow).where(BrowserSessionRow.id_hash == old_hash))
    session.add(new)


async def end_browser_session(session: AsyncSession, id_hash: str) -> None:
    await session.execute(delete(AuthorizationRequestRow).where(AuthorizationRequestRow.session_hash == id_hash))
    await session.execute(delete(BrowserSessionRow).where(BrowserSessionRow.id_hash == id_hash))


# Pending authorization requests


async def delete_pending_request(session: AsyncSession, request_id: str) -> None:
    await session.execute(delete(AuthorizationRequestRow).where(AuthorizationRequestRow.id == request_id))


# Consents


async def grant_consent(session: AsyncSession, sub: str, client_id: str, scopes: tuple[str, ...], now: int) -> None:
    """Add `scopes` to what the user has granted the client. Two approvals at once (two tabs) both
    succeed: the first creates the row, the second merges into it, never a duplicate-key error."""
    values = {"sub": sub, "client_id": client_id, "scopes": " ".join(scopes), "granted_at": now}
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    created = await session.execute(insert(ConsentRow).values(values).on_conflict_do_nothing())
    if _count(created) == 1:
        return
    # The row exists: lock it (PostgreSQL; SQLite holds the write lock already) and merge.
    row = (
        await session.execute(
            select(ConsentRow)
            .where(ConsentRow.sub == sub, ConsentRow.client_id == client_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    row.scopes = " ".join(dict.fromkeys([*row.scopes.split(), *scopes]))
    row.granted_at = now


# Authorization codes


async def get_code(session: AsyncSession, code_hash: str) -> AuthorizationCodeRow | None:
    return await session.get(AuthorizationCodeRow, code_hash)


async def purge_codes(session: AsyncSession, now: int) -> None:
    """Forget codes an hour after they expired (long enough to recognise a late replay)."""
    await session.execute(delete(AuthorizationCodeRow).where(AuthorizationCodeRow.expires_at < now - 3600))
    await session.execute(delete(AuthorizationRequestRow).where(AuthorizationRequestRow.expires_at < now))


# Refresh tokens


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


async def satisfy_prompt_login(session: AsyncSession, request: AuthorizationRequestRow) -> None:
    """The user has just logged in for this request: `prompt=login` and `max_age` are satisfied
    (without this, max_age=0 would ask again once a second had passed)."""
    await session.execute(
        update(AuthorizationRequestRow)
        .where(AuthorizationRequestRow.id == request.id)
        .values(prompt=" ".join(p for p in request.prompt.split() if p != "login"), max_age=None)
    )
