"""Refresh tokens (`refresh_tokens`): the only address of those rows (RFC 6749 §6, RFC 9700
§4.14.2).

A token is spent by a conditional UPDATE whose returned row says who won, so of two simultaneous
rotations exactly one succeeds; the successor it buys is stored atomically with it, so a
concurrent reuse that revokes the family always finds (and revokes) the successor too. A refresh
(`rotate`) spends the token only while it is live (this client's, unexpired, unrotated,
unrevoked, its user enabled) and copies the successor from it: on PostgreSQL the spend, the
successor and the read of the spent token with its user are one statement (`WITH won AS (UPDATE
... RETURNING), stored AS (INSERT ... SELECT ... FROM won) SELECT ... FROM won JOIN users`), on
SQLite one transaction; the grant reads the token only when the spend fails, to say why (and to
revoke the family of a rotated one). The authorization code's spend stores its first refresh
token the same way (`store_after`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Update, bindparam, case, null, select, update
from sqlalchemy import insert as insert_into

from bastion.store import users
from bastion.store._sql import Executor, Sql, inserting, purging, record, records, rows, transaction, values
from bastion.store.database import Database
from bastion.store.models import refresh_tokens
from bastion.store.models import users as users_table
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
# The current token of each of a user's live families: unrotated, unrevoked, unexpired.
_LIVE_FOR_USER = Sql(
    select(refresh_tokens)
    .where(
        refresh_tokens.c.sub == bindparam("sub"),
        refresh_tokens.c.rotated_at.is_(None),
        refresh_tokens.c.revoked_at.is_(None),
        refresh_tokens.c.family_expires_at > bindparam("now"),
    )
    .order_by(refresh_tokens.c.created_at),
    "sub",
    "now",
)


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


@dataclass(slots=True, frozen=True)
class Successor:
    """What a rotation decides before it spends a token: the new token's hash, its idle expiry
    (capped by the family's absolute one), and the access token issued with it. The rest is
    copied from the spent token."""

    token_hash: str
    expires_at: int
    access_jti: str
    access_exp: int


def _live(table: Any) -> tuple[ColumnElement[bool], ...]:
    """The presented token, issued to this client, neither rotated nor revoked, unexpired, and
    its user enabled: the only token a refresh may spend."""
    c = table.c
    enabled = select(users_table.c.sub).where(users_table.c.sub == c.sub, users_table.c.enabled.is_(True))
    return (
        c.token_hash == bindparam("token_hash"),
        c.client_id == bindparam("client_id"),
        c.rotated_at.is_(None),
        c.revoked_at.is_(None),
        c.expires_at > bindparam("now"),
        c.family_expires_at > bindparam("now"),
        enabled.exists(),
    )


_SPEND = update(refresh_tokens).where(*_live(refresh_tokens)).values(rotated_at=bindparam("now"))
_SPEND_PARAMS = ("token_hash", "client_id", "now")
_SUCCESSOR_PARAMS = ("successor_hash", "successor_expires_at", "access_jti", "access_exp")


def _rotate_and_store() -> Sql:
    """PostgreSQL: spend the token, store its successor (copied from the spent row) and read the
    spent row with its user, in one statement. The INSERT is a data-modifying CTE, which
    PostgreSQL runs exactly once whether or not the outer SELECT reads it."""
    won = _SPEND.returning(*refresh_tokens.columns).cte("won")
    expires_at = bindparam("successor_expires_at", type_=refresh_tokens.c.expires_at.type)
    copied = {
        "token_hash": bindparam("successor_hash", type_=refresh_tokens.c.token_hash.type),
        "created_at": bindparam("now", type_=refresh_tokens.c.created_at.type),
        "expires_at": case((won.c.family_expires_at < expires_at, won.c.family_expires_at), else_=expires_at),
        "rotated_at": null(),
        "revoked_at": null(),
        "access_jti": bindparam("access_jti", type_=refresh_tokens.c.access_jti.type),
        "access_exp": bindparam("access_exp", type_=refresh_tokens.c.access_exp.type),
    }
    columns = [copied.get(c.name, won.c[c.name]) for c in refresh_tokens.columns]
    stored = insert_into(refresh_tokens).from_select(
        [c.name for c in refresh_tokens.columns], select(*columns).select_from(won)
    )
    spent = select(won, users_table).select_from(won.outerjoin(users_table, users_table.c.sub == won.c.sub))
    return Sql(spent.add_cte(stored.cte("stored")), *_SPEND_PARAMS, *_SUCCESSOR_PARAMS)


_ROTATE_AND_STORE = _rotate_and_store()
_ROTATE = Sql(_SPEND.returning(*refresh_tokens.columns), *_SPEND_PARAMS)
_USER = Sql(select(users_table).where(users_table.c.sub == bindparam("sub")), "sub")
WIDTH = len(refresh_tokens.columns)


async def get(on: Executor, token_hash: str) -> RefreshTokenRow | None:
    return await record(on, _GET, RefreshTokenRow, token_hash)


async def with_user(on: Executor, token_hash: str) -> tuple[RefreshTokenRow | None, UserRow | None]:
    """The token and its user (None when deleted): one statement."""
    return await users.with_user(on, _WITH_USER, RefreshTokenRow, token_hash)


async def insert(on: Executor, token: RefreshTokenRow) -> None:
    await rows(on, _INSERT, *values(token))


async def rotate(
    database: Database, token_hash: str, client_id: str, now: int, successor: Successor
) -> tuple[RefreshTokenRow, UserRow] | None:
    """Spend the live token `token_hash` of `client_id` (see `_live`) and store its successor,
    atomically; the spent token and its user, or None if it was not live (unknown, another
    client's, rotated, revoked, expired, or its user disabled: nothing is written then).

    One statement on PostgreSQL; on SQLite one transaction (the spend, the successor, the user).
    """
    key = (token_hash, client_id, now)
    if not database.is_sqlite:
        found = await rows(database, _ROTATE_AND_STORE, *key, *values(successor))
        if not found:
            return None
        user = users.from_joined(found[0][WIDTH:])
        return (RefreshTokenRow(*found[0][:WIDTH]), user) if user is not None else None
    async with transaction(database) as tx:
        spent = await tx.rows(_ROTATE, *key)
        if not spent:
            return None
        row = RefreshTokenRow(*spent[0])
        stored = replace(
            row,
            token_hash=successor.token_hash,
            created_at=now,
            expires_at=min(successor.expires_at, row.family_expires_at),
            rotated_at=None,
            revoked_at=None,
            access_jti=successor.access_jti,
            access_exp=successor.access_exp,
        )
        await tx.rows(_INSERT, *values(stored))
        owner = await tx.rows(_USER, row.sub)
    return (row, UserRow(*owner[0])) if owner else None


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


async def live_for_user(on: Executor, sub: str, now: int) -> list[RefreshTokenRow]:
    """The current token of each of the user's live grants (refresh-token families), oldest first."""
    return await records(on, _LIVE_FOR_USER, RefreshTokenRow, sub, now)
