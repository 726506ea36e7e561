"""Authorization codes (`authorization_codes`): the only address of those rows (RFC 6749 §4.1.2).

A code is spent by a conditional UPDATE whose returned row says who won, so of two simultaneous
exchanges exactly one succeeds; the spend records what the exchange issued (so a replay can
revoke it) and stores the first refresh token of the family in the same statement on PostgreSQL,
the same transaction on SQLite (see `refresh_tokens.store_after`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from bastion.store import refresh_tokens, users
from bastion.store._sql import Executor, Sql, inserting, purging, record, rows, values
from bastion.store.database import Database
from bastion.store.models import authorization_codes as codes
from bastion.store.refresh_tokens import RefreshTokenRow
from bastion.store.users import UserRow


@dataclass(slots=True, frozen=True)
class AuthorizationCodeRow:
    code_hash: str
    client_id: str
    sub: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    sid: str
    auth_time: int
    amr: str
    acr: str
    created_at: int
    expires_at: int
    used_at: int | None
    # What the exchange issued, so a replay can revoke it (RFC 6749 §4.1.2).
    access_jti: str | None
    access_exp: int | None
    refresh_family: str | None


_INSERT = inserting(codes)
_GET = Sql(select(codes).where(codes.c.code_hash == bindparam("code_hash")), "code_hash")
_WITH_USER = users.joined(codes, "code_hash")
_SPEND = refresh_tokens.store_after(
    update(codes)
    .where(codes.c.code_hash == bindparam("code_hash"), codes.c.used_at.is_(None))
    .values(
        used_at=bindparam("now"),
        access_jti=bindparam("access_jti"),
        access_exp=bindparam("access_exp"),
        refresh_family=bindparam("family"),
    )
    .returning(codes.c.code_hash),
    "code_hash",
    "now",
    "access_jti",
    "access_exp",
    "family",
)
_PURGE = purging(codes, codes.c.expires_at < bindparam("before"), "before")


async def get(on: Executor, code_hash: str) -> AuthorizationCodeRow | None:
    return await record(on, _GET, AuthorizationCodeRow, code_hash)


async def with_user(on: Executor, code_hash: str) -> tuple[AuthorizationCodeRow | None, UserRow | None]:
    """The code and its user (None when deleted): one statement."""
    return await users.with_user(on, _WITH_USER, AuthorizationCodeRow, code_hash)


async def insert(on: Executor, code: AuthorizationCodeRow) -> None:
    await rows(on, _INSERT, *values(code))


async def spend(
    database: Database,
    code_hash: str,
    now: int,
    *,
    access_jti: str,
    access_exp: int,
    family: str | None,
    refresh: RefreshTokenRow | None,
) -> bool:
    """Mark the code used, record what it bought and store its refresh token, atomically;
    False if another request used it first (then nothing is recorded)."""
    key = (code_hash, now, access_jti, access_exp, family)
    return await refresh_tokens.spend_and_store(database, _SPEND, key, refresh)


async def purge_expired(on: Executor, before: int, *, batch: int) -> int:
    """Forget at most `batch` codes that expired before `before` (the caller keeps spent codes a
    while past expiry, so a late replay is still recognised and revokes what the code bought,
    RFC 6749 §4.1.2); how many."""
    return len(await rows(on, _PURGE, before, batch))
