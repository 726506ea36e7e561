"""A hash-chained audit trail of security-relevant actions (non-repudiation).

Each entry records who (actor, sub, client_id or API key id), what (action), which object, the
outcome, the request id and the time, as one JSON line and, when configured, a database row.
Entries are chained: `hash = SHA-256(prev || canonical JSON of the entry without its hash)`, so
editing or deleting an entry (or reordering) breaks every later link; `verify_entries` finds the
first broken one. Truncating the tail leaves a valid shorter chain, which is why `head()` gives
the latest hash to anchor elsewhere (a log shipper, a ticket) and `verify` can compare against it.

Anyone who can write the file can also recompute every SHA-256 link after an edit. With a key
(`AuditLog(..., key=...)`), each entry also carries `mac = HMAC-SHA256(key, hash)` (the standard
library's `hmac`); the hash covers the entry and its predecessor, so the MACs chain too, and
`verify_entries(..., key=...)` (`bastion audit verify --key-file`) refuses a chain re-linked by
someone without the key. The plain check still passes a keyed chain: the hash is unchanged.

A line or row that is not an entry (not JSON, not an object, a field missing or of the wrong
type) raises `AuditFormatError` naming where it is, rather than being misread as tampering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from bastion.guard._principal import Principal

__all__ = [
    "GENESIS",
    "AuditFormatError",
    "AuditLog",
    "AuditSink",
    "JsonLinesSink",
    "SqlAuditError",
    "SqlAuditSink",
    "VerifyResult",
    "canonical",
    "check_entry",
    "entry_hash",
    "entry_mac",
    "read_jsonl",
    "seal",
    "verify_entries",
]

GENESIS = "0" * 64


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry is hashed and stored as: sorted keys, compact, UTF-8."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The chain hash of an entry (its `hash` and `mac` members excluded, its `prev` included)."""
    body = {k: v for k, v in entry.items() if k not in ("hash", "mac")}
    return hashlib.sha256(str(body["prev"]).encode() + canonical(body)).hexdigest()


def entry_mac(chain_hash: str, key: bytes) -> str:
    """HMAC-SHA256 under `key` of an entry's chain hash (which covers the entry and its predecessor)."""
    return hmac.new(key, chain_hash.encode(), hashlib.sha256).hexdigest()


def seal(body: Mapping[str, Any], seq: int, prev: str | None, key: bytes | None = None) -> dict[str, Any]:
    """The entry numbered `seq` following the entry whose hash is `prev` (None: the first entry):
    `body` with its `seq`, `prev`, `hash` (and, with `key`, `mac`). The one way an entry is
    chained, by `AuditLog` and by the server's trail in its database."""
    entry: dict[str, Any] = {"seq": seq, **body, "prev": prev if prev is not None else GENESIS}
    entry["hash"] = entry_hash(entry)
    if key is not None:
        entry["mac"] = entry_mac(entry["hash"], key)
    return entry


class AuditFormatError(ValueError):
    """A line or row of an audit trail that is not an audit entry; the message says where."""


# The members verification reads, with their types (bool is not an int here).
_SHAPE: tuple[tuple[str, type | tuple[type, ...]], ...] = (("seq", int), ("prev", str), ("hash", str))


def check_entry(entry: object, where: str) -> None:
    """`entry` is an audit entry: a JSON object whose seq, prev and hash (and mac, when present)
    have the right types. Raises AuditFormatError naming `where`."""
    if not isinstance(entry, Mapping):
        raise AuditFormatError(f"{where}: not a JSON object")
    for name, kind in _SHAPE:
        if name not in entry:
            raise AuditFormatError(f"{where}: no `{name}`")
        value = entry[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise AuditFormatError(f"{where}: `{name}` is not a{'n integer' if kind is int else ' string'}")
    if "mac" in entry and not isinstance(entry["mac"], str):
        raise AuditFormatError(f"{where}: `mac` is not a string")


class AuditSink(Protocol):
    """Where entries go; `last()` lets a restarted process continue the chain."""

    def last(self) -> dict[str, Any] | None: ...

    def write(self, entry: dict[str, Any]) -> None: ...


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The entries of a JSON-lines audit file.

    Raises:
        AuditFormatError: `line N: ...` for a line that is not UTF-8 JSON of an entry's shape.
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
                raise AuditFormatError(f"line {number}: not JSON") from None
            check_entry(entry, f"line {number}")
            yield entry


class JsonLinesSink:
    """Appends one JSON object per line to a file (0600), flushed per entry."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def last(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            lines = [line for line in handle.read().splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None

    def write(self, entry: dict[str, Any]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as handle:
            handle.write(canonical(entry) + b"\n")
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())


def audit_table(metadata: sa.MetaData, name: str = "audit_log") -> sa.Table:
    """The audit table: the chained JSON entry plus indexed columns for queries."""
    return sa.Table(
        name,
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("actor", sa.String(300), nullable=False, index=True),
        sa.Column("action", sa.String(200), nullable=False, index=True),
        sa.Column("object", sa.String(500), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


# What a SqlAuditSink raises when its database fails (SQLAlchemy's base error), named here for
# callers that do not use SQLAlchemy themselves.
SqlAuditError = sa.exc.SQLAlchemyError


class SqlAuditSink:
    """Writes entries to a table through SQLAlchemy Core (any synchronous engine)."""

    def __init__(self, engine: sa.Engine, table: str = "audit_log") -> None:
        self.engine = engine
        self.table = audit_table(sa.MetaData(), table)
        self.table.create(engine, checkfirst=True)

    @classmethod
    def from_url(cls, url: str, table: str = "audit_log") -> SqlAuditSink:
        """A sink on a new engine for a SQLAlchemy database URL. Raises SqlAuditError."""
        return cls(sa.create_engine(url), table)

    def last(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table.c.entry).order_by(self.table.c.seq.desc()).limit(1)).first()
        return json.loads(row[0]) if row else None

    def write(self, entry: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self.table.insert().values(
                    seq=entry["seq"],
                    time=entry["time"],
                    actor=entry["actor"],
                    action=entry["action"],
                    object=entry["object"],
                    outcome=entry["outcome"],
                    request_id=entry["request_id"],
                    entry=canonical(entry).decode(),
                    hash=entry["hash"],
                )
            )

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry in sequence order."""
        with self.engine.connect() as conn:
            for seq, text in conn.execute(sa.select(self.table.c.seq, self.table.c.entry).order_by(self.table.c.seq)):
                where = f"row seq {seq}"
                try:
                    entry = json.loads(text)
                except ValueError:
                    raise AuditFormatError(f"{where}: not JSON") from None
                check_entry(entry, where)
                yield entry


class AuditLog:
    """Records audit entries, chained, into one or more sinks (the first one is the chain's head)."""

    def __init__(
        self, sinks: Sequence[AuditSink], *, clock: Callable[[], float] = time.time, key: bytes | None = None
    ) -> None:
        """`key` (at least 32 bytes, kept away from the log's writers) adds an HMAC to every entry."""
        if not sinks:
            raise ValueError("AuditLog needs at least one sink")
        if key is not None and len(key) < 32:
            raise ValueError("an audit key must be at least 32 bytes")
        self.sinks = list(sinks)
        self.clock = clock
        self._key = key
        self._lock = threading.Lock()
        last = self.sinks[0].last()
        self._seq = int(last["seq"]) if last else 0
        self._prev = str(last["hash"]) if last else GENESIS

    def record(
        self,
        action: str,
        *,
        principal: Principal | None,
        outcome: str,
        object: str | None = None,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one entry and return it."""
        with self._lock:
            body: dict[str, Any] = {
                "time": self.clock(),
                "actor": principal.actor if principal else "anonymous",
                "sub": principal.subject if principal and principal.kind != "api_key" else None,
                "client_id": principal.client_id if principal else None,
                "api_key_id": principal.api_key_id if principal else None,
                "issuer": principal.issuer if principal else None,
                "action": action,
                "object": object,
                "outcome": outcome,
                "request_id": request_id,
                "details": dict(details or {}),
            }
            entry = seal(body, self._seq + 1, self._prev, self._key)
            for sink in self.sinks:
                sink.write(entry)
            self._seq, self._prev = entry["seq"], entry["hash"]
            return entry

    def head(self) -> str:
        """The hash of the latest entry, to anchor outside the log."""
        return self._prev


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking a chain."""

    ok: bool
    count: int
    head: str
    error: str | None = None
    seq: int | None = None


def verify_entries(
    entries: Iterable[Mapping[str, Any]], *, expected_head: str | None = None, key: bytes | None = None
) -> VerifyResult:
    """Check sequence numbers, links and hashes (and, with `key`, every entry's HMAC); report the
    first break.

    Raises:
        AuditFormatError: an entry is not of an entry's shape (from the reader, or `entry N`).
    """
    prev, count = GENESIS, 0
    for entry in entries:
        expected_seq = count + 1
        check_entry(entry, f"entry {expected_seq}")
        if entry.get("seq") != expected_seq:
            return VerifyResult(
                False, count, prev, f"expected seq {expected_seq}, found {entry.get('seq')!r}", expected_seq
            )
        if entry.get("prev") != prev:
            return VerifyResult(
                False, count, prev, f"entry {expected_seq} does not link to its predecessor", expected_seq
            )
        recomputed = entry_hash(entry)
        if entry.get("hash") != recomputed:
            return VerifyResult(False, count, prev, f"entry {expected_seq} was modified (hash mismatch)", expected_seq)
        if key is not None and not hmac.compare_digest(str(entry.get("mac", "")), entry_mac(recomputed, key)):
            problem = f"entry {expected_seq} has no valid MAC under the key (re-chained or written without it)"
            return VerifyResult(False, count, prev, problem, expected_seq)
        prev, count = recomputed, expected_seq
    if expected_head is not None and prev != expected_head:
        return VerifyResult(False, count, prev, "the chain does not end at the expected head (truncated?)")
    return VerifyResult(True, count, prev)
