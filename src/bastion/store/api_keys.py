"""API keys of calling systems (`api_keys`): the only address of those rows.

The key itself is never stored, only a hex SHA-256 of it (the scheme is `bastion.guard.apikeys`'s;
this module keeps rows and knows nothing of keys). Every change is one conditional statement
that says what it did (`RETURNING`), so two processes changing the same key cannot undo each
other: a revocation made between another process's read and its write stands, and a key retired
by a rotation gets exactly one successor.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, case, or_, select, update

from bastion.store._sql import Executor, Sql, inserting, record, records, rows, transaction, values
from bastion.store.models import api_keys


@dataclass(slots=True, frozen=True)
class ApiKeyRow:
    key_id: str
    owner: str
    scopes: str  # space-separated
    sha256: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    replaced_by: str | None = None

    def active(self, now: float) -> bool:
        """Not revoked and not past its expiry (the end of a rotation overlap)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


_c = api_keys.c
_INSERT = inserting(api_keys)
_IMPORT = inserting(api_keys, unless_conflict=True)
_GET = Sql(select(api_keys).where(_c.key_id == bindparam("key_id")), "key_id")
_ALL = Sql(select(api_keys).order_by(_c.created_at, _c.key_id))
_EXISTS = Sql(select(_c.key_id).where(_c.key_id == bindparam("key_id")), "key_id")
_REVOKE = Sql(
    update(api_keys)
    .where(_c.key_id == bindparam("key_id"), _c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
    .returning(_c.key_id),
    "key_id",
    "now",
)
_ACTIVE = (_c.revoked_at.is_(None), or_(_c.expires_at.is_(None), _c.expires_at > bindparam("now")))
# The old key expires at the end of the overlap, or earlier if it was to expire before.
_RETIRE = Sql(
    update(api_keys)
    .where(_c.key_id == bindparam("key_id"), _c.replaced_by.is_(None), *_ACTIVE)
    .values(
        expires_at=case(
            (or_(_c.expires_at.is_(None), _c.expires_at > bindparam("end")), bindparam("end")),
            else_=_c.expires_at,
        ),
        replaced_by=bindparam("successor"),
    )
    .returning(*api_keys.columns),
    "key_id",
    "now",
    "end",
    "successor",
)
_TOUCH = Sql(
    update(api_keys)
    .where(
        _c.key_id == bindparam("key_id"),
        or_(_c.last_used_at.is_(None), _c.last_used_at <= bindparam("before")),
        *_ACTIVE,
    )
    .values(last_used_at=bindparam("now"))
    .returning(_c.key_id),
    "key_id",
    "before",
    "now",
)


async def create(on: Executor, key: ApiKeyRow) -> None:
    await rows(on, _INSERT, *values(key))


async def get(on: Executor, key_id: str) -> ApiKeyRow | None:
    return await record(on, _GET, ApiKeyRow, key_id)


async def list_all(on: Executor) -> list[ApiKeyRow]:
    """Every key, oldest first."""
    return await records(on, _ALL, ApiKeyRow)


async def import_keys(on: Executor, keys: list[ApiKeyRow]) -> int:
    """Store `keys` (from a file of the previous release) in one transaction, keeping any key
    already stored under the same id (an import run twice, or by two processes at once); how
    many were new."""
    async with transaction(on) as tx:
        return sum([len(await tx.rows(_IMPORT, *values(key))) for key in keys])


async def revoke(on: Executor, key_id: str, now: int) -> bool:
    """Stop the key now (a key revoked before keeps its first revocation time); False when there
    is no such key."""
    async with transaction(on) as tx:
        if await tx.rows(_REVOKE, key_id, now):
            return True
        return bool(await tx.rows(_EXISTS, key_id))


async def rotate(on: Executor, key_id: str, successor: ApiKeyRow, overlap: int) -> ApiKeyRow | None:
    """Retire the active key `key_id` (it expires `overlap` seconds after the successor's
    `created_at`, or earlier if it was to expire before) and store `successor`, in one
    transaction; the retired key, or None when `key_id` is unknown, revoked, expired or already
    rotated (then nothing is stored)."""
    now = successor.created_at
    async with transaction(on) as tx:
        retired = await tx.rows(_RETIRE, key_id, now, now + overlap, successor.key_id)
        if not retired:
            return None
        await tx.rows(_INSERT, *values(successor))
        return ApiKeyRow(*retired[0])


async def touch(on: Executor, key_id: str, now: int, resolution: int) -> bool:
    """Record a use of the active key at `now` unless one was recorded less than `resolution`
    seconds before (so a busy key costs one write per `resolution`); whether it wrote."""
    return bool(await rows(on, _TOUCH, key_id, now - resolution, now))
