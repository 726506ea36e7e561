"""Engine set-up, reachability and migration state."""

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
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
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
    """The database cannot be reached; the message is safe to print (no password)."""


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

    def __init__(self, url: str, *, pool_size: int = 20, ping_after_idle: float = PING_AFTER_IDLE) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _create_private(Path(url.split(":///", 1)[1]))
            self.engine: AsyncEngine = create_async_engine(url)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            # Connections beyond the pool are opened and closed per use, which costs far more
            # than an idle connection: the overflow is only for bursts.
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size // 2)
            event.listen(self.engine.sync_engine.pool, "checkin", _stamp_checkin)
            event.listen(self.engine.sync_engine.pool, "checkout", _pinger(ping_after_idle))

    async def check_reachable(self, seconds: float = 5.0) -> None:
        """Raise DatabaseUnavailable with a clear message if a connection cannot be made."""
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
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

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

    async def dispose(self) -> None:
        await self.engine.dispose()
