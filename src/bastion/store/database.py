"""Engine set-up, reachability, readiness and migration state, and what counts as an outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from asyncpg.exceptions import InterfaceError, PostgresError
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).with_name("migrations")
# A pooled connection idle longer than this is pinged before use; a busy one is not (a ping is
# three round trips on asyncpg). A connection that dies while busy fails one statement and is
# then dropped (the store's statements, `_sql`; a SQLAlchemy `Connection` invalidates the whole
# pool), so the next checkout connects afresh.
PING_AFTER_IDLE = 2.0
logging.getLogger("alembic").setLevel(logging.WARNING)


def _create_private(path: Path) -> None:
    """Create the SQLite file (and its directory) readable by its owner only: the file holds
    password hashes, encrypted keys and tokens' rows. SQLite gives the -wal and -shm files the
    database file's permissions, so they follow. An existing file is left as it is."""
    if path.name == ":memory:" or not path.name:
        return
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message is safe to print (no password).

    Raised by every statement the store runs (`_sql`) when the database is down, restarting,
    refusing connections or slower than the database timeout, so that a caller answers "try
    again" (the server: 503 with Retry-After) instead of failing as on a bug.
    """


# SQLSTATE classes of an outage rather than of the statement: 08 connection exception, 53
# insufficient resources (too many connections, disk full), 57 operator intervention (admin
# shutdown, crash shutdown, cannot connect now, a statement cancelled by a timeout).
_OUTAGE_CLASSES = ("08", "53", "57")


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database is out of reach, not that the
    statement was wrong: a refused or reset connection, a connection closed by the server, a pool
    or connect or statement timeout, a server shutting down or starting up."""
    seen: set[int] = set()
    found: BaseException | None = exc
    # Only explicit causes (`raise ... from`, SQLAlchemy's wrapping) are followed: an error merely
    # raised while another was being handled (`__context__`) is not an outage.
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        if isinstance(found, DatabaseUnavailable | PoolTimeout | OSError):  # OSError: TimeoutError too
            return True
        if isinstance(found, PostgresError) and str(found.sqlstate or "")[:2] in _OUTAGE_CLASSES:
            return True
        if isinstance(found, InterfaceError) and "connection is closed" in str(found):
            return True
        if isinstance(found, DBAPIError) and found.connection_invalidated:
            return True
        found = found.__cause__
    return False


class MigrationRequired(RuntimeError):
    """The database schema is not at the head revision."""


class MigrationFailed(RuntimeError):
    """A migration could not be applied safely and was rolled back; the message says why."""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI write while the server reads; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_migration_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit transactions off (`_begin_immediate` opens the one transaction),
    # so the foreign_keys pragma runs outside any transaction, the only place it takes effect.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    # IMMEDIATE takes the write lock first: two processes starting at once migrate one after
    # the other, and the second finds nothing left to do.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _stamp_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _pinger(after_idle: float) -> Any:
    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since >= after_idle:
            try:
                dbapi_connection.ping()
            except Exception as exc:  # the driver's own error types; the pool retries with a new connection
                raise DisconnectionError(f"pooled connection failed its ping: {type(exc).__name__}") from exc

    return ping_if_idle


class Database:
    """One async engine: its pool, and the schema's migrations.

    Statements run on the driver's connections checked out of this pool (`store._sql`); the
    engine itself serves Alembic and the reachability check.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        ping_after_idle: float = PING_AFTER_IDLE,
        timeout: float | None = None,
    ) -> None:
        """Args:
            url: the SQLAlchemy URL (async driver).
            pool_size: PostgreSQL connections kept open (half as many again for bursts).
            ping_after_idle: seconds idle after which a pooled connection is pinged before use.
            timeout: PostgreSQL only: the most seconds a statement waits for a pooled connection,
                for a new connection, and for its answer; past it the statement raises
                `DatabaseUnavailable` (the server's `database_timeout_seconds`). None: the
                drivers' own (the CLI, whose migrations may take long).
        """
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.timeout = timeout
        self._head: tuple[str | None] | None = None  # the migrations' head, read once
        if self.is_sqlite:
            _create_private(Path(url.split(":///", 1)[1]))
            self.engine: AsyncEngine = create_async_engine(url)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            bounded: dict[str, Any] = {}
            if timeout is not None:
                # asyncpg: `timeout` bounds the connect, `command_timeout` every statement
                # (including BEGIN, COMMIT and the idle ping); the pool bounds the checkout.
                bounded = {"pool_timeout": timeout, "connect_args": {"timeout": timeout, "command_timeout": timeout}}
            # Connections beyond the pool are opened and closed per use, which costs far more
            # than an idle connection: the overflow is only for bursts.
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size // 2, **bounded)
            event.listen(self.engine.sync_engine.pool, "checkin", _stamp_checkin)
            event.listen(self.engine.sync_engine.pool, "checkout", _pinger(ping_after_idle))

    def invalidate_pool(self, pooled: Any) -> None:
        """Drop `pooled` (a checked-out connection the server closed) and every connection of the
        pool opened before it, as SQLAlchemy does on a disconnect: a restarted server closed them
        all, and each would otherwise fail one statement before it is replaced. Connections in use
        are replaced when they are given back. Sync: call it through `greenlet_spawn`."""
        # `Pool._invalidate` is what SQLAlchemy's own Connection calls on a disconnect error; the
        # public `invalidate()` of a pooled connection drops that connection only.
        self.engine.sync_engine.pool._invalidate(pooled)

    async def check_reachable(self, seconds: float | None = None) -> None:
        """Raise DatabaseUnavailable with a clear message if a connection cannot be made within
        `seconds` (default: the database timeout, else 5)."""
        seconds = seconds if seconds is not None else self.timeout or 5.0
        try:
            async with asyncio.timeout(seconds), self.engine.connect():
                pass
        except (OSError, TimeoutError) as exc:
            raise DatabaseUnavailable(f"cannot connect to {redact(self.url)}: {exc or 'timed out'}") from exc
        except Exception as exc:  # asyncpg/aiosqlite raise their own types for auth and missing dbs
            raise DatabaseUnavailable(f"cannot connect to {redact(self.url)}: {type(exc).__name__}: {exc}") from exc

    def _alembic_config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        return config

    def head_revision(self) -> str | None:
        if self._head is None:
            self._head = (ScriptDirectory.from_config(self._alembic_config()).get_current_head(),)
        return self._head[0]

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations up to `revision` (head by default); at it already, touch nothing.

        Raises:
            MigrationFailed: on SQLite, the migrations left a row whose foreign key points
                nowhere; they were rolled back, the database is as it was.
        """
        if revision == "head" and await self.current_revision() == self.head_revision():
            return
        await self._migrate(lambda config: command.upgrade(config, revision))

    async def downgrade(self, revision: str) -> None:
        """Undo the migrations after `revision`, the same way `upgrade` applies them."""
        await self._migrate(lambda config: command.downgrade(config, revision))

    async def _migrate(self, move: Callable[[Config], None]) -> None:
        def run(sync: Connection) -> None:
            move(self._alembic_config(sync))

        if not self.is_sqlite:
            # PostgreSQL alters tables in place, and its DDL is transactional.
            async with self.engine.begin() as conn:
                await conn.run_sync(run)
            return
        # A migration that rebuilds a table on SQLite (Alembic's batch mode: copy, drop the old
        # table, rename the copy) must run with foreign keys off, or the drop's implicit DELETE
        # cascades and empties every table that references it (a client's secrets, consents and
        # device codes). SQLite's ALTER TABLE page ("making other kinds of table schema
        # changes") gives the procedure: foreign keys off outside any transaction, one
        # transaction, `PRAGMA foreign_key_check` before the commit. A connection of its own,
        # closed afterwards, so no pooled connection ever runs with foreign keys off.
        engine = create_async_engine(self.url, poolclass=NullPool)
        event.listen(engine.sync_engine, "connect", _sqlite_migration_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        try:
            async with engine.begin() as conn:
                if (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() != 0:
                    raise MigrationFailed("SQLite did not turn foreign keys off; nothing was migrated")
                await conn.run_sync(run)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:  # raised inside the transaction: it rolls back
                    # Each row: the table, the rowid, the table its key points to, the key's number.
                    tables = sorted({f"{child} -> {parent}" for child, _, parent, _ in map(tuple, broken)})
                    raise MigrationFailed(
                        f"migrating {redact(self.url)} would leave {len(broken)} rows whose foreign keys "
                        f"point nowhere ({', '.join(tables)}); nothing was changed. "
                        "Fix: `PRAGMA foreign_key_check` in sqlite3 lists them; delete or repair them and run "
                        "`bastion db upgrade` again"
                    )
        finally:
            await engine.dispose()

    async def require_migrated(self) -> None:
        current, head = await self.current_revision(), self.head_revision()
        if current != head:
            raise MigrationRequired(
                f"the database at {redact(self.url)} is at revision {current or 'none'}, not {head}. "
                "Fix: run `bastion db upgrade` with the same BASTION_DATABASE_URL"
            )

    async def readiness(self, seconds: float = 1.0) -> str | None:
        """None when the database answers within `seconds` and its schema is at the head
        revision; otherwise why not, for the log (never for a client: it names the revision)."""
        try:
            async with asyncio.timeout(seconds):
                current = await self.current_revision()
        except Exception as exc:  # whatever the driver raises, and TimeoutError: not ready
            return f"unreachable: {type(exc).__name__}: {exc or 'timed out'}"
        head = self.head_revision()
        if current != head:
            return f"at revision {current or 'none'}, not {head}"
        return None

    async def dispose(self) -> None:
        await self.engine.dispose()
