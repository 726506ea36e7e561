"""Engine set-up, reachability and migration state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
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

    async def upgrade(self) -> None:
        """Apply every migration up to head."""

        def run(sync: Connection) -> None:
            command.upgrade(self._alembic_config(sync), "head")

        async with self.engine.begin() as conn:
            await conn.run_sync(run)

    async def require_migrated(self) -> None:
        current, head = await self.current_revision(), self.head_revision()
        if current != head:
            raise MigrationRequired(
                f"the database at {redact(self.url)} is at revision {current or 'none'}, not {head}. "
                "Fix: run `bastion db upgrade` with the same BASTION_DATABASE_URL"
            )

    async def dispose(self) -> None:
        await self.engine.dispose()
