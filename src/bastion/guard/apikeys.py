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
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from bastion.guard._principal import Principal
from bastion.protocol.errors import InvalidApiKey

__all__ = [
    "PREFIX",
    "ApiKeyManager",
    "ApiKeyRecord",
    "ApiKeyStore",
    "JsonFileApiKeyStore",
    "MemoryApiKeyStore",
    "checksum_ok",
]

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


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


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

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
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
        key_id = _random(_ID_LENGTH)
        body = f"{PREFIX}{key_id}_{_random(_SECRET_LENGTH)}"
        key = body + _checksum(body)
        now = self.clock()
        record = ApiKeyRecord(
            key_id=key_id,
            owner=owner,
            scopes=tuple(sorted(set(scopes))),
            sha256=_digest(key),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        return key, record

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
