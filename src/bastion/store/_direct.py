"""Statements sent straight to the driver, for the hot paths (`grants`, `lookups`).

Through the ORM a statement costs 400-650 us of CPU before and after the driver sees it; the
same statement sent to asyncpg or aiosqlite directly costs about 170 us, most of it the driver's
own. SQL is generated once, from the models' tables, for asyncpg (`$n`) and aiosqlite (`?n`,
SQLite's numbered parameters: the same positions on both), and runs on a connection checked
out of the engine's own pool, so pool limits, the idle ping and SQLite's pragmas still apply.
Rows come back as transient ORM instances (never attached to a session), read like any other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Boolean, Table
from sqlalchemy.dialects.postgresql.base import PGDialect

from bastion.store.database import Database
from bastion.store.models import Base

Row = TypeVar("Row", bound=Base)
Mark = Callable[..., str]
_PG = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect constructors are untyped


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):  # pragma: no cover - every model here is mapped to a Table
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def names(table: Table) -> list[str]:
    return [column.name for column in table.columns]


def select_list(alias: str, table: Table) -> str:
    return ", ".join(f"{alias}.{name}" for name in names(table))


class Sql(NamedTuple):
    """One statement in both dialects."""

    postgres: str
    sqlite: str


def both(write: Callable[[Mark], str]) -> Sql:
    """`write(mark)` twice: `mark(n)` is parameter n; `mark(n, table, column)` adds the column's
    type on PostgreSQL (needed where the type cannot be inferred, as in INSERT ... SELECT)."""

    def postgres(n: int, table: Table | None = None, column: str | None = None) -> str:
        if table is None or column is None:
            return f"${n}"
        return f"${n}::{table.columns[column].type.compile(dialect=_PG)}"

    def sqlite(n: int, _table: Table | None = None, _column: str | None = None) -> str:
        return f"?{n}"

    return Sql(write(postgres), write(sqlite))


_SHAPES: dict[type[Base], tuple[tuple[str, ...], tuple[int, ...]]] = {}


def _shape(model: type[Base]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The model's column names in table order and the positions of its boolean columns."""
    shape = _SHAPES.get(model)
    if shape is None:
        columns = list(table_of(model).columns)
        booleans = tuple(i for i, column in enumerate(columns) if isinstance(column.type, Boolean))
        shape = _SHAPES[model] = (tuple(column.name for column in columns), booleans)
    return shape


def build(model: type[Row], values: Sequence[Any]) -> Row:
    """A transient instance of `model` from its columns' values, in table order."""
    names, booleans = _shape(model)
    if booleans:
        values = list(values)
        for i in booleans:  # SQLite hands booleans back as 0 and 1
            if values[i] is not None:
                values[i] = bool(values[i])
    return model(**dict(zip(names, values, strict=True)))


def build_optional(model: type[Row], values: Sequence[Any]) -> Row | None:
    """As `build`, or None for the all-NULL columns of an outer join that found nothing (the
    first column is the primary key, never NULL in a real row)."""
    return None if values[0] is None else build(model, values)


@asynccontextmanager
async def driver(database: Database) -> AsyncIterator[Any]:
    """The driver's own connection (asyncpg or aiosqlite), checked out of the engine's pool."""
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


async def fetch_one(database: Database, sql: Sql, *args: Any) -> Sequence[Any] | None:
    """The first row of a SELECT, as a tuple, or None."""
    async with driver(database) as connection:
        if not database.is_sqlite:
            record = await connection.fetchrow(sql.postgres, *args)
            return None if record is None else tuple(record)
        rows = await connection.execute_fetchall(sql.sqlite, args)
        return tuple(rows[0]) if rows else None


def insert_sql(model: type[Base]) -> Sql:
    """INSERT of every column of `model`, parameters in table order (see `row_values`)."""
    table = table_of(model)
    columns = names(table)
    return both(
        lambda mark: (
            f"INSERT INTO {table.name} ({', '.join(columns)})"  # noqa: S608 - names from the model
            f" VALUES ({', '.join(mark(i + 1) for i in range(len(columns)))})"
        )
    )


def row_values(row: Base) -> list[Any]:
    """A row's values in table order, a column's scalar default where the attribute is unset
    (what the ORM's flush would fill in)."""
    values = []
    for column in table_of(type(row)).columns:
        value = getattr(row, column.key)
        default = column.default
        if value is None and default is not None and getattr(default, "is_scalar", False):
            value = getattr(default, "arg", None)
        values.append(value)
    return values


class Transaction:
    """Statements inside one transaction on the driver's connection."""

    def __init__(self, connection: Any, postgres: bool) -> None:
        self._connection, self._postgres = connection, postgres

    async def run(self, sql: Sql, *args: Any) -> int:
        """Execute a statement; the number of rows it wrote."""
        if self._postgres:
            status: str = await self._connection.execute(sql.postgres, *args)
            return int(status.rsplit(" ", 1)[-1])
        cursor = await self._connection.execute(sql.sqlite, args)
        count = int(cursor.rowcount)
        await cursor.close()
        return count

    async def fetch_one(self, sql: Sql, *args: Any) -> Sequence[Any] | None:
        if self._postgres:
            record = await self._connection.fetchrow(sql.postgres, *args)
            return None if record is None else tuple(record)
        rows = await self._connection.execute_fetchall(sql.sqlite, args)
        return tuple(rows[0]) if rows else None


@asynccontextmanager
async def transaction(database: Database) -> AsyncIterator[Transaction]:
    """One transaction on the driver's connection: committed when the block ends, rolled back
    if it raises."""
    async with driver(database) as connection:
        if not database.is_sqlite:
            async with connection.transaction():
                yield Transaction(connection, postgres=True)
            return
        if connection.isolation_level is None:  # autocommit: open the transaction explicitly
            await (await connection.execute("BEGIN")).close()
        try:
            yield Transaction(connection, postgres=False)
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()
