"""Refresh tokens (`refresh_tokens`): the only address of those rows (RFC 6749 §6, RFC 9700
§4.14.2).

A token is spent by a conditional UPDATE whose returned row says who won, so of two simultaneous
rotations exactly one succeeds; the successor it buys is stored atomically with it, so a
concurrent reuse that revokes the family always finds (and revokes) the successor too. On
PostgreSQL the two are one statement (a data-modifying `WITH won AS (UPDATE ... RETURNING)
INSERT ... SELECT ... FROM won`), on SQLite one transaction. The authorization code's spend
stores its first refresh token the same way (`store_after`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy import insert as insert_into

from bastion.store import users
from bastion.store._sql import Executor, Sql, inserting, purging, record, rows, transaction, values
from bastion.store.database import Database
from bastion.store.models import refresh_tokens
from bastion.store.users import UserRow


@dataclass(slots=True, frozen=True)
class RefreshTokenRow:
    token_hash: str
    family: str
    client_id: str
    sub: str
    scope: str
    sid: str
    auth_time: int
    amr: str
    acr: str
    created_at: int
    expires_at: int  # sliding idle expiry
    family_expires_at: int  # absolute expiry of the family
    rotated_at: int | None  # used (replaced)
    revoked_at: int | None
    access_jti: str | None
    access_exp: int | None


_SUCCESSOR = tuple("successor_" + column.name for column in refresh_tokens.columns)

_INSERT = inserting(refresh_tokens)
_GET = Sql(select(refresh_tokens).where(refresh_tokens.c.token_hash == bindparam("token_hash")), "token_hash")
_WITH_USER = users.joined(refresh_tokens, "token_hash")
_FAMILY_ISSUED = Sql(
    select(refresh_tokens.c.access_jti, refresh_tokens.c.client_id, refresh_tokens.c.access_exp).where(
        refresh_tokens.c.family == bindparam("family")
    ),
    "family",
)


def _revoking(column: str) -> Sql:
    """UPDATE revoking every live token whose `column` has the given value."""
    live = (refresh_tokens.c[column] == bindparam(column), refresh_tokens.c.revoked_at.is_(None))
    return Sql(update(refresh_tokens).where(*live).values(revoked_at=bindparam("now")), column, "now")


_REVOKE_FAMILY = _revoking("family")
# Past the family's absolute expiry no token of it is accepted, rotated, or worth detecting reuse of.
_PURGE = purging(refresh_tokens, refresh_tokens.c.family_expires_at <= bindparam("now"), "now")
_REVOKE_FOR_USER = _revoking("sub")


def store_after(spend: Update, *params: str) -> tuple[Sql, Sql]:
    """A conditional `UPDATE ... RETURNING` (`spend`, binding `params`) alone, and on PostgreSQL
    followed in the same statement by the INSERT of a successor token if it matched (the
    successor's values after `params`)."""
    columns = refresh_tokens.columns
    successor = select(*(bindparam(name, type_=c.type) for name, c in zip(_SUCCESSOR, columns, strict=True)))
    stored = (
        insert_into(refresh_tokens)
        .from_select([c.name for c in columns], successor.select_from(spend.cte("won")))
        .returning(refresh_tokens.c.token_hash)
    )
    return Sql(spend, *params), Sql(stored, *params, *_SUCCESSOR)


async def spend_and_store(
    database: Database, spend: tuple[Sql, Sql], key: Sequence[Any], successor: RefreshTokenRow | None
) -> bool:
    """Run a conditional UPDATE from `store_after` and, if it won, store `successor`, atomically;
    True if it won (else nothing is stored)."""
    alone, with_successor = spend
    if successor is None:
        return bool(await rows(database, alone, *key))
    if not database.is_sqlite:
        return bool(await rows(database, with_successor, *key, *values(successor)))
    async with transaction(database) as tx:
        if not await tx.rows(alone, *key):
            return False
        await tx.rows(_INSERT, *values(successor))
        return True


_ROTATE = store_after(
    update(refresh_tokens)
    .where(
        refresh_tokens.c.token_hash == bindparam("token_hash"),
        refresh_tokens.c.rotated_at.is_(None),
        refresh_tokens.c.revoked_at.is_(None),
    )
    .values(rotated_at=bindparam("now"))
    .returning(refresh_tokens.c.token_hash),
    "token_hash",
    "now",
)


async def get(on: Executor, token_hash: str) -> RefreshTokenRow | None:
    return await record(on, _GET, RefreshTokenRow, token_hash)


async def with_user(on: Executor, token_hash: str) -> tuple[RefreshTokenRow | None, UserRow | None]:
    """The token and its user (None when deleted): one statement."""
    return await users.with_user(on, _WITH_USER, RefreshTokenRow, token_hash)


async def insert(on: Executor, token: RefreshTokenRow) -> None:
    await rows(on, _INSERT, *values(token))


async def rotate(database: Database, token_hash: str, now: int, successor: RefreshTokenRow | None) -> bool:
    """Mark the token rotated and store its successor, atomically; False if it was rotated or
    revoked meanwhile (then nothing is stored)."""
    return await spend_and_store(database, _ROTATE, (token_hash, now), successor)


async def revoke_family(on: Executor, family: str, now: int) -> list[tuple[str, str, int]]:
    """Revoke every token of a family; the (jti, client_id, exp) of the access tokens issued
    alongside, so they can be revoked too."""
    async with transaction(on) as tx:
        issued = await tx.rows(_FAMILY_ISSUED, family)
        await tx.rows(_REVOKE_FAMILY, family, now)
    return [(jti, client_id, exp) for jti, client_id, exp in issued if jti and exp]


async def revoke_for_user(on: Executor, sub: str, now: int) -> None:
    """Revoke every live token of the user (a disabled account)."""
    await rows(on, _REVOKE_FOR_USER, sub, now)


async def purge_expired(on: Executor, now: int, *, batch: int) -> int:
    """Forget at most `batch` tokens whose family is past its absolute lifetime at `now`; how many."""
    return len(await rows(on, _PURGE, now, batch))
