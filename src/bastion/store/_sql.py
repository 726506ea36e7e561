"""The one way the store runs SQL: Core statements compiled once per dialect, sent to the driver.

Through the ORM (or a Core `execute` on SQLAlchemy's async connection) a statement costs
400-650 us of CPU before and after the driver sees it; most of that is compiling and processing
work that is the same on every call. Here a statement is a SQLAlchemy Core construct compiled
once for each dialect (the engine's own, so asyncpg gets `$n` with casts and aiosqlite `?`); the
compiled SQL string, the order of its bind names and each column's bind and result processors
(SQLAlchemy's own, from `TypeEngine.bind_processor` / `result_processor`: SQLite's integers come
back as booleans this way) are cached, and each call only maps values and runs the string on
the asyncpg or aiosqlite connection checked out of the engine's pool, so pool limits, the idle
ping and SQLite's pragmas still apply. A one-row read then costs about 100-120 us of CPU on
PostgreSQL and 170-190 on SQLite, a spend with its successor about 200 and 360
(`bench/store_bench.py`).

Writes that need to know what they did say `RETURNING` and count the rows that come back.
`transaction(database)` is the one transaction helper; `rows`/`row` on a `Database` are the one
autocommit path (a single statement, committed on its own).

An outage (connection refused or closed by the server, a pool, connect or statement timeout, a
server shutting down) raises `DatabaseUnavailable` from here, whatever the driver said
(`database.is_unavailable`), so callers tell "try again" from a bug. A connection the server
closed is dropped with every connection opened before it, so a restarted server costs the
statements in flight, not one failed statement per pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import ColumnElement, Table, bindparam, delete, insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import BindParameter, ClauseElement
from sqlalchemy.util import greenlet_spawn

from bastion.store.database import Database, DatabaseUnavailable, is_unavailable

Row: TypeAlias = Sequence[Any]
Processor: TypeAlias = Callable[[Any], Any]
Build: TypeAlias = Callable[[Dialect], ClauseElement]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement as one dialect runs it."""

    sql: str
    # Per driver parameter, in order: where its value comes from (an index into the call's
    # values followed by `constants`) and its bind processor, if the type has one.
    binds: tuple[tuple[int, Processor | None], ...]
    constants: tuple[Any, ...]
    # (position, processor) of each result column whose type converts what the driver returns.
    results: tuple[tuple[int, Processor], ...]

    def arguments(self, values: Sequence[Any]) -> list[Any]:
        """The driver's parameters from a call's values (in `Sql.params` order)."""
        everything = (*values, *self.constants) if self.constants else values
        return [everything[i] if process is None else process(everything[i]) for i, process in self.binds]

    def row(self, raw: Row) -> Row:
        """A driver's row with each column's result processor applied."""
        if not self.results:
            return raw
        values = list(raw)
        for i, process in self.results:
            values[i] = process(values[i])
        return values


class Sql:
    """A Core statement and the names of the values a call passes, in order.

    `statement` is the construct, or a function of the dialect for the few that differ (such as
    `ON CONFLICT DO NOTHING`, which each dialect spells with its own `insert`).
    """

    __slots__ = ("_build", "_compiled", "params")

    def __init__(self, statement: ClauseElement | Build, *params: str) -> None:
        self._build: Build = (lambda _dialect: statement) if isinstance(statement, ClauseElement) else statement
        self.params = params
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        """The statement compiled for `dialect`, once per dialect name."""
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> Compiled:
        statement = self._build(dialect)
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DDL is never run here
            raise TypeError(f"not a SQL statement: {statement}")
        constants: list[Any] = []
        binds = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if name in self.params:
                source = self.params.index(name)
            elif bind.value is not None or not bind.required:  # a value written into the statement
                source = len(self.params) + len(constants)
                constants.append(bind.value)
            else:
                raise ValueError(f"statement parameter {name!r} is not among {self.params}")
            binds.append((source, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        columns = getattr(statement, "exported_columns", ())
        results = [(i, c.type.dialect_impl(dialect).result_processor(dialect, None)) for i, c in enumerate(columns)]
        return Compiled(
            compiled.string,
            tuple(binds),
            tuple(constants),
            tuple((i, process) for i, process in results if process is not None),
        )


def inserting(table: Table, *, without: tuple[str, ...] = (), unless_conflict: bool = False) -> Sql:
    """INSERT of the table's columns (but `without`, such as a generated id), its values passed
    in column order: a record's fields (see `values`).

    `unless_conflict`: `ON CONFLICT DO NOTHING RETURNING` the first column, so a row that would
    break a unique constraint is not written and returns nothing instead of raising.
    """
    names = tuple(column.name for column in table.columns if column.name not in without)
    assigned: dict[str, BindParameter[Any]] = {name: bindparam(name) for name in names}
    if not unless_conflict:
        return Sql(insert(table).values(assigned), *names)

    def build(dialect: Dialect) -> ClauseElement:
        spelled = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        first = next(iter(table.columns))
        return spelled(table).values(assigned).on_conflict_do_nothing().returning(first)

    return Sql(build, *names)


def purging(table: Table, expired: ColumnElement[bool], *params: str) -> Sql:
    """DELETE of at most `batch` rows for which `expired` holds, returning their primary keys
    (so the caller counts what it removed); its values are `params`, then `batch`.

    A sweep is a series of these short statements, never one DELETE of a whole backlog: each holds
    its locks briefly. Several processes sweep at once without waiting on each other: on
    PostgreSQL each skips the rows another is deleting (`FOR UPDATE SKIP LOCKED`, so no two lock
    the same rows in different orders); SQLite runs one writer at a time anyway (and has no
    `FOR UPDATE`, which its dialect leaves out).
    """
    key = tuple(table.primary_key.columns)
    chosen = select(*key).where(expired).limit(bindparam("batch")).with_for_update(skip_locked=True)
    target = key[0] if len(key) == 1 else tuple_(*key)
    return Sql(delete(table).where(target.in_(chosen)).returning(*key), *params, "batch")


_FIELDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def values(record: Any) -> tuple[Any, ...]:
    """A record's field values in order, which is its table's column order."""
    fields = _FIELDS.get(type(record))
    if fields is None:
        getter = attrgetter(*record.__slots__)
        fields = _FIELDS[type(record)] = lambda r: tuple(getter(r))
    return fields(record)


class Transaction:
    """Statements on one driver connection inside one open transaction (see `transaction`)."""

    __slots__ = ("_connection", "_dialect", "_postgres")

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection, self._dialect = connection, dialect
        self._postgres = dialect.name == "postgresql"

    async def rows(self, sql: Sql, *values: Any) -> list[Row]:
        """Every row the statement returns (none for a write without RETURNING)."""
        compiled = sql.compiled(self._dialect)
        args = compiled.arguments(values)
        try:
            if self._postgres:
                raw = await self._connection.fetch(compiled.sql, *args)
            else:
                raw = await self._connection.execute_fetchall(compiled.sql, args)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if is_unavailable(exc) or (self._postgres and self._connection.is_closed()):
                raise _unavailable(exc) from exc
            raise
        if not compiled.results:
            return raw  # type: ignore[no-any-return]  # the driver's list of rows
        return [compiled.row(r) for r in raw]


Executor: TypeAlias = Database | Transaction


def _unavailable(exc: Exception) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"the database is unavailable: {type(exc).__name__}: {exc or 'timed out'}")


async def _checkout(database: Database) -> Any:
    """A pooled connection; `DatabaseUnavailable` when none can be had (refused, timed out)."""
    for _ in range(2):
        try:
            pooled = await database.engine.raw_connection()
        except Exception as exc:
            if is_unavailable(exc):
                raise _unavailable(exc) from exc
            raise
        driver: Any = pooled.driver_connection
        if database.is_sqlite or not driver.is_closed():
            return pooled
        # Closed by the server while idle in the pool (a restart): drop it and its generation
        # now rather than fail a statement on it, and take a fresh one (no round trip spent).
        await greenlet_spawn(database.invalidate_pool, pooled)
    raise DatabaseUnavailable("the database is unavailable: it closed a new connection at once")


@asynccontextmanager
async def _checked_out(database: Database) -> AsyncIterator[tuple[Any, Dialect]]:
    """The driver's own connection (asyncpg or aiosqlite), checked out of the engine's pool
    (with the pool's checkout ping and connect pragmas) and given back to it (reset as on any
    checkin), without a SQLAlchemy `Connection` around it: ~25 us less per statement."""
    pooled = await _checkout(database)
    driver: Any = pooled.driver_connection
    dialect = database.engine.dialect
    try:
        yield driver, dialect
    finally:
        if dialect.name == "postgresql" and driver.is_closed():
            # The server closed it under a statement (a restart, a failover): that statement
            # failed; the connection is dropped with its generation, not handed to the next one.
            await greenlet_spawn(database.invalidate_pool, pooled)
        elif dialect.name == "postgresql" and driver.is_in_transaction():
            # A transaction left open (its rollback failed, or was cancelled): never reused.
            await greenlet_spawn(pooled.invalidate)
        else:
            await greenlet_spawn(pooled.close)


async def rows(on: Executor, sql: Sql, *values: Any) -> list[Row]:
    """Run one statement: inside `on` if it is a transaction, else on its own (autocommit)."""
    if isinstance(on, Transaction):
        return await on.rows(sql, *values)
    async with _checked_out(on) as (connection, dialect):
        found = await Transaction(connection, dialect).rows(sql, *values)
        if dialect.name == "sqlite" and connection.in_transaction:
            await connection.commit()  # sqlite3 began one before the write: this ends it
        return found


async def row(on: Executor, sql: Sql, *values: Any) -> Row | None:
    """The first row the statement returns, or None."""
    found = await rows(on, sql, *values)
    return found[0] if found else None


async def record(on: Executor, sql: Sql, make: Callable[..., T], *values: Any) -> T | None:
    """The first row the statement returns, as `make(*row)` (a record type), or None."""
    found = await rows(on, sql, *values)
    return make(*found[0]) if found else None


async def records(on: Executor, sql: Sql, make: Callable[..., T], *values: Any) -> list[T]:
    """Every row the statement returns, as `make(*row)`."""
    return [make(*found) for found in await rows(on, sql, *values)]


@asynccontextmanager
async def transaction(on: Executor) -> AsyncIterator[Transaction]:
    """One transaction on the driver's connection: committed when the block ends, rolled back if
    it raises. Given a transaction, joins it (a unit of work composed of other units)."""
    if isinstance(on, Transaction):
        yield on
        return
    async with _checked_out(on) as (connection, dialect):
        if dialect.name == "postgresql":
            try:
                async with connection.transaction():
                    yield Transaction(connection, dialect)
            except DatabaseUnavailable:
                raise
            except Exception as exc:
                # BEGIN or COMMIT failed for an outage, or a rollback found the connection
                # closed under a statement that failed for one.
                if is_unavailable(exc) or connection.is_closed():
                    raise _unavailable(exc) from exc
                raise
            return
        # IMMEDIATE takes SQLite's write lock now (waiting out busy_timeout), so a transaction
        # that reads before it writes cannot fail on a snapshot another writer made stale.
        await connection.execute_fetchall("BEGIN IMMEDIATE")
        try:
            yield Transaction(connection, dialect)
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()
