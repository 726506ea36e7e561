"""The guard's read of Bastion's `api_keys` table, for `DatabaseApiKeyVerifier`.

The guard protects other people's APIs and may not import `bastion.store` (it would bring the
server's schema, migrations and pool into every API). What an API on another host needs is
narrower: one row by key id, and, when allowed, one conditional write of its last use. So this
module names only the columns it reads (a test checks them against `store.models.api_keys`) and
runs two Core statements on its own small async engine; it never creates or migrates anything.
The import-linter contract lists it as the second exception to "only store touches SQL".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

COLUMNS = (
    "key_id",
    "owner",
    "scopes",
    "sha256",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "replaced_by",
)
_KEYS = sa.table("api_keys", *(sa.column(name) for name in COLUMNS))
_GET = sa.select(*_KEYS.c).where(_KEYS.c.key_id == sa.bindparam("key_id"))
_TOUCH = (
    sa.update(_KEYS)
    .where(
        _KEYS.c.key_id == sa.bindparam("id"),
        sa.or_(_KEYS.c.last_used_at.is_(None), _KEYS.c.last_used_at <= sa.bindparam("before")),
        _KEYS.c.revoked_at.is_(None),
    )
    .values(last_used_at=sa.bindparam("now"))  # bind names differ from columns: SQLAlchemy reserves those
)
log = logging.getLogger("bastion.guard.apikeys")
_ASYNC_DRIVERS = (
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
    ("sqlite:///", "sqlite+aiosqlite:///"),
)


def async_url(url: str) -> str:
    """The URL Bastion's `database_url` takes, with the async driver Bastion uses."""
    for plain, driver in _ASYNC_DRIVERS:
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class ApiKeyReader:
    """Rows of `api_keys` by key id, on a pool of at most `pool_size` connections."""

    def __init__(self, url: str, *, pool_size: int = 2) -> None:
        resolved = async_url(url)
        # pre-ping: an API outlives database restarts; a dead pooled connection is replaced
        # before use instead of failing one request.
        options: dict[str, Any] = {"pool_pre_ping": True}
        if not resolved.startswith("sqlite"):
            options.update(pool_size=pool_size, max_overflow=0)
        self.engine: AsyncEngine = create_async_engine(resolved, **options)

    async def get(self, key_id: str) -> Sequence[Any] | None:
        """The row's values in `COLUMNS` order, or None."""
        async with self.engine.connect() as conn:
            found = (await conn.execute(_GET, {"key_id": key_id})).first()
        return None if found is None else tuple(found)

    async def touch(self, key_id: str, now: int, before: int) -> None:
        """Record a use at `now` unless one was recorded after `before` (or the key is revoked)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(_TOUCH, {"id": key_id, "now": now, "before": before})
        except sa.exc.DBAPIError as exc:
            # Bookkeeping only: a write refused (a role that may only SELECT) never refuses a key.
            log.warning(
                "could not record an API key's last use (%s); a read-only role takes last_used_resolution=None",
                type(exc).__name__,
            )

    async def close(self) -> None:
        await self.engine.dispose()
