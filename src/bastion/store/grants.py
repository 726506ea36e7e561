"""The statements of the code exchange and the refresh grant, sent straight to the driver
(see `_direct`): these two grants run a read and a conditional write per request, and through
the ORM each statement cost more than signing the two tokens.

The write keeps the rule of `flows`: the code (or the refresh token) is spent by a conditional
UPDATE whose row count says who won, and the refresh token it buys is stored in the same
transaction. On PostgreSQL both are one statement (a data-modifying WITH), so they commit
together in one round trip; on SQLite they run in one transaction.
"""

# ruff: noqa: S608 - the SQL is built once from the models' table and column names; every value is a bound parameter
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bastion.store._direct import (
    Mark,
    Sql,
    both,
    build,
    build_optional,
    driver,
    fetch_one,
    names,
    select_list,
    table_of,
)
from bastion.store.database import Database
from bastion.store.models import AuthorizationCodeRow, RefreshTokenRow, UserRow

_CODES = table_of(AuthorizationCodeRow)
_REFRESH = table_of(RefreshTokenRow)
_USERS = table_of(UserRow)
_REFRESH_COLUMNS = names(_REFRESH)


def _with_user(table_name: str, table_columns: str, key: str) -> Sql:
    return both(
        lambda mark: (
            f"SELECT {table_columns}, {select_list('u', _USERS)} FROM {table_name} AS t"
            f" LEFT OUTER JOIN {_USERS.name} AS u ON u.sub = t.sub WHERE t.{key} = {mark(1)}"
        )
    )


def _spend(mark: Mark) -> str:
    return (
        f"UPDATE {_CODES.name} SET used_at = {mark(2)}, access_jti = {mark(3)}, access_exp = {mark(4)},"
        f" refresh_family = {mark(5)} WHERE code_hash = {mark(1)} AND used_at IS NULL"
    )


def _rotate(mark: Mark) -> str:
    return (
        f"UPDATE {_REFRESH.name} SET rotated_at = {mark(2)}"
        f" WHERE token_hash = {mark(1)} AND rotated_at IS NULL AND revoked_at IS NULL"
    )


def _store_after(update: Callable[[Mark], str], first: int) -> Sql:
    """PostgreSQL only: the UPDATE and, if it matched, the INSERT of the successor, one statement."""

    def write(mark: Mark) -> str:
        values = ", ".join(mark(first + i, _REFRESH, name) for i, name in enumerate(_REFRESH_COLUMNS))
        return (
            f"WITH won AS ({update(mark)} RETURNING 1) INSERT INTO {_REFRESH.name} ({', '.join(_REFRESH_COLUMNS)})"
            f" SELECT {values} FROM won"
        )

    return both(write)


_CODE_AND_USER = _with_user(_CODES.name, select_list("t", _CODES), "code_hash")
_REFRESH_AND_USER = _with_user(_REFRESH.name, select_list("t", _REFRESH), "token_hash")
_SPEND = both(_spend)
_SPEND_AND_STORE = _store_after(_spend, 6)
_ROTATE = both(_rotate)
_ROTATE_AND_STORE = _store_after(_rotate, 3)
_INSERT_REFRESH = both(
    lambda mark: (
        f"INSERT INTO {_REFRESH.name} ({', '.join(_REFRESH_COLUMNS)})"
        f" VALUES ({', '.join(mark(i + 1) for i in range(len(_REFRESH_COLUMNS)))})"
    )
)


def _split(width: int, row: Sequence[Any] | None) -> tuple[Sequence[Any] | None, UserRow | None]:
    if row is None:
        return None, None
    return row[:width], build_optional(UserRow, row[width:])


async def code_and_user(database: Database, code_hash: str) -> tuple[AuthorizationCodeRow | None, UserRow | None]:
    """The code and its user (None when deleted), in one round trip."""
    values, user = _split(len(_CODES.columns), await fetch_one(database, _CODE_AND_USER, code_hash))
    return (None if values is None else build(AuthorizationCodeRow, values)), user


async def refresh_and_user(database: Database, token_hash: str) -> tuple[RefreshTokenRow | None, UserRow | None]:
    """The refresh token and its user (None when deleted), in one round trip."""
    values, user = _split(len(_REFRESH.columns), await fetch_one(database, _REFRESH_AND_USER, token_hash))
    return (None if values is None else build(RefreshTokenRow, values)), user


async def _win_and_store(
    database: Database, update: Sql, update_and_store: Sql, key_args: list[Any], successor: RefreshTokenRow | None
) -> bool:
    """Run a conditional UPDATE and, if it won, insert `successor`, atomically; True if it won."""
    successor_values = None if successor is None else [getattr(successor, name) for name in _REFRESH_COLUMNS]
    async with driver(database) as connection:
        if not database.is_sqlite:
            if successor_values is None:
                return bool(await connection.execute(update.postgres, *key_args) == "UPDATE 1")
            status = await connection.execute(update_and_store.postgres, *key_args, *successor_values)
            return bool(status == "INSERT 0 1")
        if connection.isolation_level is None:  # autocommit: the two statements need a transaction
            await (await connection.execute("BEGIN")).close()
        try:
            cursor = await connection.execute(update.sqlite, key_args)
            won = cursor.rowcount == 1
            await cursor.close()
            if won and successor_values is not None:
                await (await connection.execute(_INSERT_REFRESH.sqlite, successor_values)).close()
            await connection.commit()
        except BaseException:
            await connection.rollback()
            raise
        return bool(won)


async def spend_code(
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
    return await _win_and_store(
        database, _SPEND, _SPEND_AND_STORE, [code_hash, now, access_jti, access_exp, family], refresh
    )


async def rotate_refresh(database: Database, token_hash: str, now: int, successor: RefreshTokenRow | None) -> bool:
    """Mark the token rotated and store its successor, atomically; False if it was rotated or
    revoked meanwhile (then nothing is stored)."""
    return await _win_and_store(database, _ROTATE, _ROTATE_AND_STORE, [token_hash, now], successor)
