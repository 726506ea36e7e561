"""API keys: credentials that identify a calling system, never a user.

Format: `bsk_<key id>_<secret><checksum>`: a recognisable prefix and a CRC32 checksum let
secret scanners find leaked keys and let the guard reject typos without a lookup (the scheme
GitHub uses for its tokens). The secret is 43 base62 characters (256 bits from `secrets`).
Only a SHA-256 of the whole key is stored: with 256 bits of entropy there is nothing to
brute-force, so a slow password hash would only cost latency. Rotation issues a new key and
lets the old one live for an overlap period; the last-used time is kept, written at most once
per `last_used_resolution` so that verification does not write on every request.

Every change is a read-modify-write of one record done atomically by the store (`update`): a
verification that wrote back the whole record it had read undid a revocation made in between,
by the CLI in another process sharing the same `apikeys.json`.

Where keys live. `bastion apikeys` keeps them in Bastion's database (table `api_keys`), and an
API on any host checks them with `DatabaseApiKeyVerifier(database_url)`: it reads a key's row
when it first sees the key id and reuses it for `cache_seconds` (30 by default), so a revocation
or a rotation's end is seen within that time. `ApiKeyManager` over `MemoryApiKeyStore` or
`JsonFileApiKeyStore` still serves an app that manages its own keys in code on one host; the CLI
no longer writes `DATA_DIR/apikeys.json` (it imports such a file into the database once).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bastion.guard._principal import Principal
from bastion.protocol.errors import InvalidApiKey

if TYPE_CHECKING:
    # Only a type here: the reader loads SQLAlchemy, which only a database verifier needs.
    from bastion.guard._apikey_reader import ApiKeyReader

__all__ = [
    "PREFIX",
    "ApiKeyManager",
    "ApiKeyRecord",
    "ApiKeyStore",
    "DatabaseApiKeyVerifier",
    "JsonFileApiKeyStore",
    "MemoryApiKeyStore",
    "checksum_ok",
    "key_digest",
    "new_key",
]

log = logging.getLogger("bastion.guard.apikeys")

PREFIX = "bsk_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 12
_SECRET_LENGTH = 43  # 43 * log2(62) = 256.0 bits
_CHECKSUM_LENGTH = 6  # base62 of a CRC32 fits in 6 characters


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LENGTH)


def checksum_ok(key: str) -> bool:
    """True when `key` has the Bastion API key shape and its checksum matches."""
    expected = len(PREFIX) + _ID_LENGTH + 1 + _SECRET_LENGTH + _CHECKSUM_LENGTH
    if len(key) != expected or not key.startswith(PREFIX):
        return False
    body, check = key[:-_CHECKSUM_LENGTH], key[-_CHECKSUM_LENGTH:]
    return hmac.compare_digest(_checksum(body), check)


def _key_id(key: str) -> str:
    return key[len(PREFIX) : len(PREFIX) + _ID_LENGTH]


def key_digest(key: str) -> str:
    """What is stored of a key: the hex SHA-256 of the whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


_digest = key_digest


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What is stored about a key: never the key itself."""

    key_id: str
    owner: str
    scopes: tuple[str, ...]
    sha256: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None
    replaced_by: str | None = None

    def active(self, now: float) -> bool:
        """Not revoked and not past its expiry (the end of a rotation overlap)."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def public(self) -> dict[str, object]:
        """The record without its hash, for listings."""
        data = asdict(self)
        del data["sha256"]
        return data


def new_key(
    owner: str, scopes: Iterable[str], now: float, *, expires_in: float | None = None
) -> tuple[str, ApiKeyRecord]:
    """A new key (to show once) and the record to store: a random id and a 256-bit secret."""
    key_id = _random(_ID_LENGTH)
    body = f"{PREFIX}{key_id}_{_random(_SECRET_LENGTH)}"
    key = body + _checksum(body)
    record = ApiKeyRecord(
        key_id=key_id,
        owner=owner,
        scopes=tuple(sorted(set(scopes))),
        sha256=_digest(key),
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
    )
    return key, record


# A change to one record: the record as stored now -> what to store (None: store nothing).
Change = Callable[[ApiKeyRecord], ApiKeyRecord | None]


class ApiKeyStore(Protocol):
    """Where key records live."""

    def get(self, key_id: str) -> ApiKeyRecord | None: ...

    def put(self, record: ApiKeyRecord) -> None:
        """Store a new record."""
        ...

    def update(self, key_id: str, change: Change) -> ApiKeyRecord | None:
        """Apply `change` to the record as stored now, atomically for every process sharing the
        store (nothing else writes between its read and its write); the record stored after, or
        None when there is no such key."""
        ...

    def all(self) -> list[ApiKeyRecord]: ...


class MemoryApiKeyStore:
    """Records in a dict (tests, single-process apps)."""

    def __init__(self, records: Iterable[ApiKeyRecord] = ()) -> None:
        self._records = {r.key_id: r for r in records}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._records.get(key_id)

    def put(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self._records[record.key_id] = record

    def update(self, key_id: str, change: Change) -> ApiKeyRecord | None:
        with self._lock:
            current = self._records.get(key_id)
            if current is None:
                return None
            changed = change(current)
            if changed is not None:
                self._records[key_id] = current = changed
            return current

    def all(self) -> list[ApiKeyRecord]:
        return list(self._records.values())


class JsonFileApiKeyStore:
    """Records in a JSON file (0600) shared by processes (the API's workers, the CLI).

    Reads take the file as it is (each write replaces it whole, so a reader never sees half of
    one) and re-read it when it changed. Every write is a read-modify-write under an exclusive
    `flock` on `<file>.lock`, re-reading the file first, so no process writes back a record
    another has changed since it read it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # The file's identity when last read: os.replace gives every write a new inode, and mtime
        # alone misses a write in the same clock tick as the one before (a revocation was lost so).
        self._version: tuple[int, int, int] | None = None
        self._records: dict[str, ApiKeyRecord] = {}
        self._warned_imported = False

    def _warn_if_imported(self) -> None:
        if self.path.with_name(self.path.name + ".imported").exists():
            self._warned_imported = True
            log.warning(
                "%s was imported into Bastion's database by `bastion apikeys` and renamed; "
                "verify keys with DatabaseApiKeyVerifier(database_url)",
                self.path,
            )

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if not self._warned_imported:
                self._warn_if_imported()
            self._records, self._version = {}, None
            return
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if version == self._version:
            return
        raw = json.loads(self.path.read_text())
        self._records = {r["key_id"]: ApiKeyRecord(**{**r, "scopes": tuple(r["scopes"])}) for r in raw["keys"]}
        self._version = version

    @contextmanager
    def _locked(self) -> Iterator[dict[str, ApiKeyRecord]]:
        """The records as stored now, while this process holds the file lock (every other writer
        waits): change them, then `_save()` inside the block."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        import fcntl  # here, not at the top: POSIX only, and only the file store needs it

        with self._lock, open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self._version = None  # read what is stored now, whatever was read before
            self._load()
            yield self._records

    def _save(self) -> None:
        data = json.dumps({"keys": [asdict(r) for r in self._records.values()]}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".apikeys-")
        with os.fdopen(fd, "w") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._version = None  # read back on next use, never assumed

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with self._lock:
            self._load()
            return self._records.get(key_id)

    def put(self, record: ApiKeyRecord) -> None:
        with self._locked() as records:
            records[record.key_id] = record
            self._save()

    def update(self, key_id: str, change: Change) -> ApiKeyRecord | None:
        with self._locked() as records:
            current = records.get(key_id)
            if current is None:
                return None
            changed = change(current)
            if changed is not None:
                records[key_id] = current = changed
                self._save()
            return current

    def all(self) -> list[ApiKeyRecord]:
        with self._lock:
            self._load()
            return list(self._records.values())


class ApiKeyManager:
    """Create, verify, rotate and revoke API keys over a store."""

    def __init__(
        self,
        store: ApiKeyStore,
        *,
        clock: Callable[[], float] = time.time,
        last_used_resolution: float = 60.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.last_used_resolution = last_used_resolution

    def create(
        self, owner: str, scopes: Iterable[str] = (), *, expires_in: float | None = None
    ) -> tuple[str, ApiKeyRecord]:
        """A new key (shown once) and its stored record."""
        key, record = self._new(owner, scopes, expires_in)
        self.store.put(record)
        return key, record

    def _new(self, owner: str, scopes: Iterable[str], expires_in: float | None) -> tuple[str, ApiKeyRecord]:
        return new_key(owner, scopes, self.clock(), expires_in=expires_in)

    def verify(self, presented: str) -> Principal:
        """The system principal for a valid key.

        Raises:
            InvalidApiKey: malformed, unknown, wrong secret, expired or revoked.
        """
        if not checksum_ok(presented):
            raise InvalidApiKey("bad format or checksum")
        record = self.store.get(_key_id(presented))
        if record is None or not hmac.compare_digest(record.sha256, _digest(presented)):
            raise InvalidApiKey("unknown key")
        now = self.clock()
        if not record.active(now):
            raise InvalidApiKey("expired or revoked")
        last = record.last_used_at
        if last is None or now - last >= self.last_used_resolution:
            # Only last_used_at changes, on the record as stored now: a revocation made since the
            # read above stands, and refuses this request too.
            stored = self.store.update(record.key_id, lambda current: self._touched(current, now))
            if stored is None or not stored.active(now):
                raise InvalidApiKey("expired or revoked")
        return Principal(
            kind="api_key",
            subject=record.owner,
            scopes=frozenset(record.scopes),
            api_key_id=record.key_id,
        )

    def _touched(self, current: ApiKeyRecord, now: float) -> ApiKeyRecord | None:
        if not current.active(now):
            return None
        last = current.last_used_at
        if last is not None and now - last < self.last_used_resolution:
            return None  # another process wrote it meanwhile
        return replace(current, last_used_at=now)

    def rotate(self, key_id: str, *, overlap: float = 86_400.0) -> tuple[str, ApiKeyRecord]:
        """A successor key; the old one keeps working for `overlap` seconds, then expires.

        Raises:
            KeyError: no active key with this id.
        """
        old = self.store.get(key_id)
        if old is None:
            raise KeyError(key_id)
        key, new = self._new(old.owner, old.scopes, None)
        now = self.clock()

        def retire(current: ApiKeyRecord) -> ApiKeyRecord | None:
            if not current.active(now):
                return None
            end = now + overlap if current.expires_at is None else min(now + overlap, current.expires_at)
            return replace(current, expires_at=end, replaced_by=new.key_id)

        retired = self.store.update(key_id, retire)
        if retired is None or retired.replaced_by != new.key_id:
            raise KeyError(key_id)  # revoked or expired (perhaps meanwhile): no successor
        self.store.put(new)
        return key, new

    def revoke(self, key_id: str) -> None:
        """Stop a key now.

        Raises:
            KeyError: no key with this id.
        """
        now = self.clock()

        def revoked(current: ApiKeyRecord) -> ApiKeyRecord | None:
            return replace(current, revoked_at=now) if current.revoked_at is None else None

        if self.store.update(key_id, revoked) is None:
            raise KeyError(key_id)


# Compared against when a key id is unknown, so that an unknown id and a wrong secret cost the
# same comparison (a digest is never this: it is hex).
_NO_KEY = "-" * 64


class DatabaseApiKeyVerifier:
    """Verifies the keys `bastion apikeys` keeps in Bastion's database, from any host.

    A key's row (or its absence) is read when its key id is first presented and reused for
    `cache_seconds`: a revocation, a rotation's end or a new key is seen within that time, and a
    busy key costs one read per `cache_seconds` per process. The presented key's SHA-256 is
    compared with the stored one in constant time, and an unknown key id, a wrong secret, an
    expired and a revoked key are refused with the same public error (`InvalidApiKey`).

    Args:
        url: the database URL, as Bastion's `BASTION_DATABASE_URL` (`postgresql://...`, or
            `sqlite:///...` on the server's own host).
        cache_seconds: the longest a key's row is reused (default 30; 0 reads on every request).
        last_used_resolution: a key's last use is written at most once per this many seconds
            per process (default 60); None never writes, for a database role that may only
            `SELECT` from `api_keys`.
        max_cached: the most key ids remembered; past it the oldest is forgotten, so key ids
            sent at random cannot grow the cache.
        pool_size: PostgreSQL connections the verifier may open.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 30.0,
        last_used_resolution: float | None = 60.0,
        max_cached: int = 10_000,
        pool_size: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if cache_seconds < 0 or max_cached < 1:
            raise ValueError("cache_seconds must be >= 0 and max_cached >= 1")
        from bastion.guard._apikey_reader import ApiKeyReader  # SQLAlchemy, loaded only here

        self.reader: ApiKeyReader = ApiKeyReader(url, pool_size=pool_size)
        self.cache_seconds = cache_seconds
        self.last_used_resolution = last_used_resolution
        self.max_cached = max_cached
        self.clock = clock
        # key id -> (read at, the record or None, last use written or read)
        self._cache: dict[str, tuple[float, ApiKeyRecord | None, float | None]] = {}
        # key id -> its read under way: requests arriving meanwhile share it (a busy key whose
        # entry just went stale costs one read, not one per request in flight)
        self._reading: dict[str, asyncio.Future[Sequence[Any] | None]] = {}

    async def verify(self, presented: str) -> Principal:
        """The system principal for a valid key.

        Raises:
            InvalidApiKey: malformed, unknown, wrong secret, expired or revoked.
        """
        if not checksum_ok(presented):
            raise InvalidApiKey("bad format or checksum")
        now = self.clock()
        record, last_used = await self._record(_key_id(presented), now)
        expected = record.sha256 if record is not None else _NO_KEY
        if not hmac.compare_digest(expected, _digest(presented)) or record is None:
            raise InvalidApiKey("unknown key")
        if not record.active(now):
            raise InvalidApiKey("expired or revoked")
        await self._touch(record, last_used, now)
        return Principal(
            kind="api_key",
            subject=record.owner,
            scopes=frozenset(record.scopes),
            api_key_id=record.key_id,
        )

    async def _record(self, key_id: str, now: float) -> tuple[ApiKeyRecord | None, float | None]:
        cached = self._cache.get(key_id)
        if cached is not None and 0 <= now - cached[0] < self.cache_seconds:
            return cached[1], cached[2]
        reading = self._reading.get(key_id)
        if reading is None:
            reading = self._reading[key_id] = asyncio.ensure_future(self.reader.get(key_id))
            reading.add_done_callback(lambda done: self._read(key_id, done))
        found = await asyncio.shield(reading)  # a cancelled request leaves the read to the others
        record = None if found is None else _from_row(found)
        last_used = record.last_used_at if record is not None else None
        cached = self._cache.get(key_id)  # as of now, after the read
        if cached is not None and cached[2] is not None and (last_used is None or cached[2] > last_used):
            last_used = cached[2]  # this process wrote a later use than the row read says
        self._remember(key_id, (now, record, last_used))
        return record, last_used

    def _read(self, key_id: str, done: asyncio.Future[Sequence[Any] | None]) -> None:
        del self._reading[key_id]
        if not done.cancelled():
            done.exception()  # retrieved here too: every request waiting on it may have gone

    def _remember(self, key_id: str, entry: tuple[float, ApiKeyRecord | None, float | None]) -> None:
        self._cache.pop(key_id, None)  # re-inserted last: the dict's order is the age order
        self._cache[key_id] = entry
        while len(self._cache) > self.max_cached:
            del self._cache[next(iter(self._cache))]

    async def _touch(self, record: ApiKeyRecord, last_used: float | None, now: float) -> None:
        resolution = self.last_used_resolution
        cached = self._cache.get(record.key_id)
        if cached is not None:
            last_used = cached[2]  # as of now: a request verified meanwhile may have written it
        if resolution is None or (last_used is not None and now - last_used < resolution):
            return
        if cached is not None:
            self._cache[record.key_id] = (cached[0], cached[1], now)
        await self.reader.touch(record.key_id, int(now), int(now - resolution))

    async def close(self) -> None:
        """Close the database connections (at the API's shutdown)."""
        await self.reader.close()


def _from_row(row: Sequence[Any]) -> ApiKeyRecord:
    key_id, owner, scopes, sha256, created_at, expires_at, revoked_at, last_used_at, replaced_by = row
    return ApiKeyRecord(
        key_id=key_id,
        owner=owner,
        scopes=tuple(scopes.split()),
        sha256=sha256,
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
        last_used_at=last_used_at,
        replaced_by=replaced_by,
    )
