"""Sweeping expired rows: a background task of every server process, and `bastion db purge`.

Every table whose rows expire is swept here, each through its own store module: browser
sessions (absolute or idle timeout), pending requests, authorization codes and device codes (kept
an hour past expiry, so a late replay or poll is still recognised), refresh tokens whose family
is past its absolute lifetime, revocations of tokens no validator accepts any more, and the
client-assertion replay cache. Without it, anonymous traffic grows the database for as long as
the server runs.

With several workers every process sweeps. That is cheap and safe: a sweep is a series of
DELETEs of at most `BATCH` rows each (`store._sql.purging`), each committed on its own, so locks
are short and two processes sweeping at once only find fewer rows; the interval is jittered so
workers started together do not sweep in step.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import structlog

from bastion.server.context import ServerContext
from bastion.server.endpoints.device_authorization import EXPIRED_RETENTION as DEVICE_CODE_RETENTION
from bastion.store import Database, codes, device_codes, pending_requests, refresh_tokens, revocations, sessions

# Rows per DELETE; a background sweep stops a table after `MOST_BATCHES` of them and goes on at
# the next one, so a backlog (after downtime) never occupies a worker for long.
BATCH = 1000
MOST_BATCHES = 50
# A spent code is kept this long past expiry: a replay is still told apart from a made-up code
# and revokes what the code bought (RFC 6749 §4.1.2).
CODE_REPLAY_RETENTION = 3600

Purge = Callable[[Database, int], Awaitable[int]]  # (database, batch) -> rows deleted
_log = structlog.get_logger("bastion")


def _purges(now: int, session_idle: int) -> tuple[tuple[str, Purge], ...]:
    """Each expiring table's name and its one bounded DELETE at `now`."""
    return (
        ("browser_sessions", lambda db, n: sessions.purge_expired(db, now, idle_before=now - session_idle, batch=n)),
        ("authorization_requests", lambda db, n: pending_requests.purge_expired(db, now, batch=n)),
        ("authorization_codes", lambda db, n: codes.purge_expired(db, now - CODE_REPLAY_RETENTION, batch=n)),
        ("device_codes", lambda db, n: device_codes.purge_expired(db, now - DEVICE_CODE_RETENTION, batch=n)),
        ("refresh_tokens", lambda db, n: refresh_tokens.purge_expired(db, now, batch=n)),
        ("revoked_tokens", lambda db, n: revocations.purge_revoked(db, now, batch=n)),
        ("used_assertions", lambda db, n: revocations.purge_used_assertions(db, now, batch=n)),
    )


async def purge_expired(
    database: Database, *, now: int, session_idle: int, batch: int = BATCH, most_batches: int | None = None
) -> dict[str, int]:
    """Delete what has expired at `now` from every expiring table, `batch` rows per statement,
    at most `most_batches` statements per table (None: until none is left). Rows deleted, per table.

    Args:
        session_idle: the browser session idle timeout (`session_idle_lifetime`) in seconds.
    """
    counts: dict[str, int] = {}
    for table, purge in _purges(now, session_idle):
        total = rounds = 0
        while True:
            deleted = await purge(database, batch)
            total, rounds = total + deleted, rounds + 1
            if deleted < batch or (most_batches is not None and rounds >= most_batches):
                break
        counts[table] = total
    return counts


async def sweep_forever(ctx: ServerContext) -> None:
    """Sweep every `purge_interval` seconds (give or take half of it) until cancelled. A failure
    (the database away for a moment) is logged and the next sweep tries again."""
    interval = ctx.settings.purge_interval
    while True:
        await asyncio.sleep(interval * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret
        try:
            counts = await purge_expired(
                ctx.database,
                now=int(time.time()),
                session_idle=ctx.settings.session_idle_lifetime,
                most_batches=MOST_BATCHES,
            )
        except Exception:  # the sweeper outlives any one failure: logged, retried next time
            _log.exception("purge_failed")
            continue
        if any(counts.values()):
            _log.info("expired_rows_purged", **counts)


__all__ = ["BATCH", "purge_expired", "sweep_forever"]
