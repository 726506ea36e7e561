"""API keys: credentials that identify a calling system, never a user.

Format: `bsk_<key id>_<secret><checksum>`: a recognisable prefix and a CRC32 checksum let
secret scanners find leaked keys and let the guard reject typos without a lookup (the scheme
GitHub uses for its tokens). The secret is 43 base62 characters (256 bits from `secrets`).
Only a SHA-256 of the whole key is stored: with 256 bits of entropy there is nothing to
brute-force, so a slow password hash would only cost latency. Rotation issues a new key and
lets the old one live for an overlap period; the last-used time is kept, written at most once
per `last_used_resolution` so that verification does not write on every request.
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
from collections.abc import Callable, Iterable
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


class ApiKeyStore(Protocol):
    """Where key records live."""

    def get(self, key_id: str) -> ApiKeyRecord | None: ...

    def put(self, record: ApiKeyRecord) -> None: ...

    def all(self) -> list[ApiKeyRecord]: ...


class MemoryApiKeyStore:
    """Records in a dict (tests, single-process apps)."""

    def __init__(self, records: Iterable[ApiKeyRecord] = ()) -> None:
        self._records = {r.key_id: r for r in records}

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._records.get(key_id)

    def put(self, record: ApiKeyRecord) -> None:
        self._records[record.key_id] = record

    def all(self) -> list[ApiKeyRecord]:
        return list(self._records.values())


class JsonFileApiKeyStore:
    """Records in a JSON file (0600), re-read when another process (the CLI) changed it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._records: dict[str, ApiKeyRecord] = {}

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._records, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        raw = json.loads(self.path.read_text())
        self._records = {r["key_id"]: ApiKeyRecord(**{**r, "scopes": tuple(r["scopes"])}) for r in raw["keys"]}
        self._mtime = mtime

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with self._lock:
            self._load()
            return self._records.get(key_id)

    def put(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self._load()
            self._records[record.key_id] = record
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = json.dumps({"keys": [asdict(r) for r in self._records.values()]}, indent=1)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".apikeys-")
            with os.fdopen(fd, "w") as handle:
                handle.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            self._mtime = self.path.stat().st_mtime

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
        self.store.put(record)
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
            self.store.put(replace(record, last_used_at=now))
        return Principal(
            kind="api_key",
            subject=record.owner,
            scopes=frozenset(record.scopes),
            api_key_id=record.key_id,
        )

    def rotate(self, key_id: str, *, overlap: float = 86_400.0) -> tuple[str, ApiKeyRecord]:
        """A successor key; the old one keeps working for `overlap` seconds, then expires.

        Raises:
            KeyError: no active key with this id.
        """
        old = self.store.get(key_id)
        now = self.clock()
        if old is None or not old.active(now):
            raise KeyError(key_id)
        key, new = self.create(old.owner, old.scopes)
        end = now + overlap
        if old.expires_at is not None:
            end = min(end, old.expires_at)
        self.store.put(replace(old, expires_at=end, replaced_by=new.key_id))
        return key, new

    def revoke(self, key_id: str) -> None:
        """Stop a key now.

        Raises:
            KeyError: no key with this id.
        """
        record = self.store.get(key_id)
        if record is None:
            raise KeyError(key_id)
        self.store.put(replace(record, revoked_at=self.clock()))
