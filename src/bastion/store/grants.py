"""The statements of the code exchange and the refresh grant, sent straight to the driver.

These two grants run a read and a conditional write per request, and through the ORM each
statement costs several hundred microseconds of Python before the driver sees it: more than
signing the two tokens. Here the SQL is generated once from the models' tables, for asyncpg
(`$n` placeholders) and for aiosqlite (`?n`), and run on a connection checked out of the
engine's own pool, so pool limits, the idle ping and SQLite's pragmas are the engine's.

The write keeps the rule of `flows`: the code (or the refresh token) is spent by a conditional
UPDATE whose row count says who won, and the refresh token it buys is stored in the same
transaction. On PostgreSQL both are one statement (a data-modifying WITH), so they commit
together in one round trip; on SQLite they run in one transaction.

Rows come back as transient ORM instances (never attached to a session), so callers read them
like any other row.
"""

# ruff: noqa: S608 - the SQL is built once from the models' table and column names; every value is a bound parameter
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Boolean, Table
from sqlalchemy.dialects.postgresql.base import PGDialect

from bastion.store.database import Database
from bastion.store.models import AuthorizationCodeRow, RefreshTokenRow, UserRow

_Row = TypeVar("_Row", AuthorizationCodeRow, RefreshTokenRow, UserRow)
_CODES: Table = AuthorizationCodeRow.__table__  # type: ignore[assignment]  # a mapped class's Table
_REFRESH: Table = RefreshTokenRow.__table__  # type: ignore[assignment]
_USERS: Table = UserRow.__table__  # type: ignore[assignment]
_PG = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect constructors are untyped


def _names(table: Table) -> list[str]:
    return [column.name for column in table.columns]


def _booleans(table: Table) -> frozenset[str]:
    # SQLite hands booleans back as 0 and 1.
    return frozenset(column.name for column in table.columns if isinstance(column.type, Boolean))


@dataclass(frozen=True, slots=True)
class _Statements:
    code_and_user: str
    refresh_and_user: str
    spend_code: str
    spend_code_and_store: str
    rotate_refresh: str
    rotate_refresh_and_store: str
    insert_refresh: str


def _statements(postgres: bool) -> _Statements:
    def mark(n: int, table: Table | None = None, column: str | None = None) -> str:
        if not postgres:
            return f"?{n}"  # SQLite's numbered parameters, bound by position like asyncpg's
        if table is None or column is None:
            return f"${n}"
        # In INSERT ... SELECT the parameter's type is not inferred from the target column.
        return f"${n}::{table.columns[column].type.compile(dialect=_PG)}"

    def joined(table: Table, key: str) -> str:
        columns = [f"t.{name}" for name in _names(table)] + [f"u.{name}" for name in _names(_USERS)]
        return (
            f"SELECT {', '.join(columns)} FROM {table.name} AS t LEFT OUTER JOIN {_USERS.name} AS u"
            f" ON u.sub = t.sub WHERE t.{key} = {mark(1)}"
        )

    refresh_columns = _names(_REFRESH)
    spend = (
        f"UPDATE {_CODES.name} SET used_at = {mark(2)}, access_jti = {mark(3)}, access_exp = {mark(4)},"
        f" refresh_family = {mark(5)} WHERE code_hash = {mark(1)} AND used_at IS NULL"
    )
    rotate = (
        f"UPDATE {_REFRESH.name} SET rotated_at = {mark(2)}"
        f" WHERE token_hash = {mark(1)} AND rotated_at IS NULL AND revoked_at IS NULL"
    )

    def store_after(update: str, first: int) -> str:
        values = ", ".join(mark(first + i, _REFRESH, name) for i, name in enumerate(refresh_columns))
        return (
            f"WITH won AS ({update} RETURNING 1) INSERT INTO {_REFRESH.name} ({', '.join(refresh_columns)})"
            f" SELECT {values} FROM won"
        )

    return _Statements(
        code_and_user=joined(_CODES, "code_hash"),
        refresh_and_user=joined(_REFRESH, "token_hash"),
        spend_code=spend,
        spend_code_and_store=store_after(spend, 6),
        rotate_refresh=rotate,
        rotate_refresh_and_store=store_after(rotate, 3),
        insert_refresh=(
            f"INSERT INTO {_REFRESH.name} ({', '.join(refresh_columns)})"
            f" VALUES ({', '.join(mark(i + 1) for i in range(len(refresh_columns)))})"
        ),
    )


_POSTGRES_SQL = _statements(postgres=True)
_SQLITE_SQL = _statements(postgres=False)


def _build(cls: type[_Row], table: Table, values: Sequence[Any]) -> _Row:
    booleans = _booleans(table)
    fields = {
        name: bool(value) if name in booleans and value is not None else value
        for name, value in zip(_names(table), values, strict=True)
    }
    return cls(**fields)


def _split(cls: type[_Row], table: Table, row: Sequence[Any] | None) -> tuple[_Row | None, UserRow | None]:
    if row is None:
        return None, None
    width = len(table.columns)
    user = None if row[width] is None else _build(UserRow, _USERS, row[width:])
    return _build(cls, table, row[:width]), user


def _refresh_values(row: RefreshTokenRow) -> list[Any]:
    return [getattr(row, name) for name in _names(_REFRESH)]


@asynccontextmanager
async def _driver(database: Database) -> AsyncIterator[Any]:
    """The driver's own connection (asyncpg or aiosqlite), checked out of the engine's pool."""
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


async def _fetch_one(database: Database, postgres_sql: str, sqlite_sql: str, key: str) -> Sequence[Any] | None:
    async with _driver(database) as driver:
        if not database.is_sqlite:
            record = await driver.fetchrow(postgres_sql, key)
            return None if record is None else tuple(record)
        rows = await driver.execute_fetchall(sqlite_sql, (key,))
        return rows[0] if rows else None


async def code_and_user(database: Database, code_hash: str) -> tuple[AuthorizationCodeRow | None, UserRow | None]:
    """The code and its user (None when deleted), in one round trip."""
    row = await _fetch_one(database, _POSTGRES_SQL.code_and_user, _SQLITE_SQL.code_and_user, code_hash)
    return _split(AuthorizationCodeRow, _CODES, row)


async def refresh_and_user(database: Database, token_hash: str) -> tuple[RefreshTokenRow | None, UserRow | None]:
    """The refresh token and its user (None when deleted), in one round trip."""
    row = await _fetch_one(database, _POSTGRES_SQL.refresh_and_user, _SQLITE_SQL.refresh_and_user, token_hash)
    return _split(RefreshTokenRow, _REFRESH, row)


async def _win_and_store(
    database: Database,
    pick: Callable[[_Statements], tuple[str, str]],
    key_args: list[Any],
    successor: RefreshTokenRow | None,
) -> bool:
    """Run a conditional UPDATE and, if it won, insert `successor`, atomically; True if it won."""
    update_only, update_and_store = pick(_POSTGRES_SQL)
    async with _driver(database) as driver:
        if not database.is_sqlite:
            if successor is None:
                return bool(await driver.execute(update_only, *key_args) == "UPDATE 1")
            status = await driver.execute(update_and_store, *key_args, *_refresh_values(successor))
            return bool(status == "INSERT 0 1")
        update_only = pick(_SQLITE_SQL)[0]
        if driver.isolation_level is None:  # autocommit: the two statements need a transaction
            await (await driver.execute("BEGIN")).close()
        try:
            cursor = await driver.execute(update_only, key_args)
            won = cursor.rowcount == 1
            await cursor.close()
            if won and successor is not None:
                await (await driver.execute(_SQLITE_SQL.insert_refresh, _refresh_values(successor))).close()
            await driver.commit()
        except BaseException:
            await driver.rollback()
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
        database,
        lambda sql: (sql.spend_code, sql.spend_code_and_store),
        [code_hash, now, access_jti, access_exp, family],
        refresh,
    )


async def rotate_refresh(database: Database, token_hash: str, now: int, successor: RefreshTokenRow | None) -> bool:
    """Mark the token rotated and store its successor, atomically; False if it was rotated or
    revoked meanwhile (then nothing is stored)."""
    return await _win_and_store(
        database, lambda sql: (sql.rotate_refresh, sql.rotate_refresh_and_store), [token_hash, now], successor
    )
