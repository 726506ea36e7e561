"""The server's security events in its database: a hash-chained trail (`store.audit`).

Every audit event (`bastion.events.audit`) is written on stderr as it happens and queued here;
a background task of each server process writes the queue every `INTERVAL` seconds, in one
transaction per batch, so a grant waits for no database write of its audit entry. Each entry is
chained as the guard chains its own (`bastion.guard.audit.seal`), so `bastion audit verify --db`
checks either; the store numbers the entries under a lock, so several workers make one chain.

The queue is bounded (`CAPACITY`): while the database is away the entries wait and are written
when it is back; past the bound new entries are counted, not queued, and the trail then records
an `audit_events_dropped` entry with the count (the events themselves are on stderr). At a clean
shutdown the queue is written before the database is closed.

An entry's members: `actor` (`user:SUB`, `client:ID` or `anonymous`, as the guard names its
principals), `sub`, `client_id`, `issuer` (this server), `action` (the event's name), `object`
(`jti:...` for an event about one token), `outcome` (`failure` for a refused or failed attempt,
else `success`), `request_id`, and the event's other fields as `details`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import structlog

from bastion.events import compact_json, set_trail
from bastion.guard.audit import canonical, seal
from bastion.store import Database, DatabaseUnavailable
from bastion.store import audit as audit_store
from bastion.store.audit import AuditRow

INTERVAL = 0.2
CAPACITY = 10_000
BATCH = 500
# An event whose name says it was refused or failed.
_FAILURE_WORDS = ("failed", "throttled", "refused", "replayed", "denied", "reuse", "dropped")
# The lengths of the columns an entry's members are copied to (store.models.audit_log).
_ACTOR, _ACTION, _OBJECT, _REQUEST_ID = 300, 200, 500, 100
_NOT_DETAILS = ("audit", "event", "level", "timestamp", "request_id", "sub", "client_id")
_ENCODE = compact_json(default=str)
_log = structlog.get_logger("bastion")


def outcome(event: str) -> str:
    """`failure` for an event that records a refused or failed attempt, else `success`."""
    return "failure" if any(word in event for word in _FAILURE_WORDS) else "success"


def entry_body(at: float, record: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    """The unchained entry of one audit line (`record`, as `events.audit` wrote it) made at `at`."""
    event = str(record["event"])
    sub, client_id = record.get("sub"), record.get("client_id")
    actor = f"user:{sub}" if sub else f"client:{client_id}" if client_id else "anonymous"
    if "via" in record:  # an administrator's action: `sub`/`client_id` name what was acted on
        by_sub, by_client, via = record.get("actor_sub"), record.get("actor_client_id"), record["via"]
        actor = f"user:{by_sub}" if by_sub else f"client:{by_client}" if by_client else str(via)
    details = json.loads(_ENCODE({k: v for k, v in record.items() if k not in _NOT_DETAILS}))
    jti = record.get("jti")
    request_id = record.get("request_id")
    return {
        "time": at,
        "actor": actor[:_ACTOR],
        "sub": str(sub) if sub else None,
        "client_id": str(client_id) if client_id else None,
        "api_key_id": None,
        "issuer": issuer,
        "action": event[:_ACTION],
        "object": f"jti:{jti}"[:_OBJECT] if jti else None,
        "outcome": outcome(event),
        "request_id": str(request_id)[:_REQUEST_ID] if request_id else None,
        "details": details,
    }


def seal_row(body: Mapping[str, Any], seq: int, prev: str | None) -> AuditRow:
    """The stored row of `body` chained as entry `seq` after the entry whose hash is `prev`."""
    entry = seal(body, seq, prev)
    return AuditRow(
        seq,
        entry["time"],
        entry["actor"],
        entry["action"],
        entry["object"],
        entry["outcome"],
        entry["request_id"],
        canonical(entry).decode(),
        entry["hash"],
    )


class AuditTrail:
    """The queue of one process's audit entries and the task that writes them."""

    def __init__(
        self, database: Database, issuer: str, *, interval: float = INTERVAL, capacity: int = CAPACITY
    ) -> None:
        self.database = database
        self.issuer = issuer
        self.interval = interval
        self.capacity = capacity
        self._queue: deque[tuple[float, Mapping[str, Any]]] = deque()
        self._dropped = 0
        self._writing = asyncio.Lock()
        self._away = False  # the last write found the database unavailable (logged once per outage)
        self._closing = asyncio.Event()

    def submit(self, record: Mapping[str, Any]) -> None:
        """Queue one audit line (called by `events.audit`; no I/O)."""
        if len(self._queue) >= self.capacity:
            self._dropped += 1
            return
        self._queue.append((time.time(), record))

    def attach(self) -> None:
        """Receive every audit event of this process from now on."""
        set_trail(self.submit)

    def detach(self) -> None:
        set_trail(None, only_if=self.submit)

    async def flush(self) -> int:
        """Write everything queued; how many entries. Entries a database outage kept from being
        written stay queued, in order, for the next flush."""
        written = 0
        async with self._writing:
            while self._queue or self._dropped:
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                bodies = [entry_body(at, record, self.issuer) for at, record in batch]
                dropped, self._dropped = self._dropped, 0
                if dropped:
                    lost = {"event": "audit_events_dropped", "count": dropped, "capacity": self.capacity}
                    bodies.append(entry_body(time.time(), lost, self.issuer))
                try:
                    await audit_store.append(self.database, bodies, seal_row)
                except DatabaseUnavailable as exc:
                    self._queue.extendleft(reversed(batch))
                    self._dropped += dropped
                    if not self._away:
                        _log.warning("audit_trail_unavailable", error=str(exc), queued=len(self._queue))
                    self._away = True
                    break
                if self._away:
                    _log.info("audit_trail_resumed", queued=len(self._queue))
                self._away = False
                written += len(bodies)
        return written

    async def run(self) -> None:
        """Flush every `interval` seconds until `close`. Anything but an outage (a bug) is logged;
        the batch it concerned is on stderr and is not retried.

        Not to be cancelled: a batch is taken off the queue for its write, so a cancellation
        during the write would lose it; `close` ends the loop after the write under way."""
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.interval)
            try:
                await self.flush()
            except Exception:
                _log.exception("audit_trail_failed")

    async def close(self) -> None:
        """Stop receiving events and write what is queued (a clean shutdown): the write under way
        finishes first (`flush` holds the writers' lock), then the rest is written."""
        self.detach()
        self._closing.set()
        try:
            await self.flush()
        except Exception:
            _log.exception("audit_trail_failed")
