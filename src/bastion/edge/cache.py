"""The optional decision cache: an allowed credential remembered per (credential, method, route).

Off by default (`decision_cache_seconds: 0`). When on, a credential the guard accepted for a
route and method is not checked again for that many seconds: no token validation, no API-key
lookup, no issuer. Everything else still runs on every request (the peer, the path, the route,
the body, the client certificate, and the quotas, which are counted on every request).

The price, and why it is off by default: a credential revoked (or an API key deleted) while its
allow is cached keeps passing on that route and method until the entry's seconds are over. An
entry never outlives the token's `exp`. Only allows are kept: a refusal is decided again next
time. Keys are the credential's SHA-256, never the credential itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from bastion.guard import Principal

__all__ = ["DecisionCache"]

CacheKey = tuple[bytes, str, int]


class DecisionCache:
    """Allowed principals by (credential SHA-256, method, route index), for `seconds`, bounded."""

    __slots__ = ("_entries", "clock", "maxsize", "seconds")

    def __init__(self, seconds: float, *, maxsize: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.seconds = seconds
        self.maxsize = maxsize
        self.clock = clock
        self._entries: dict[CacheKey, tuple[Principal, float]] = {}

    @staticmethod
    def key(kind: str, credential: str, method: str, route: int) -> CacheKey:
        """The entry's key: `kind` ("bearer" or "api_key") keeps a token and a key apart."""
        digest = hashlib.sha256(f"{kind} {credential}".encode()).digest()
        return digest, method, route

    def get(self, key: CacheKey) -> Principal | None:
        """The principal allowed under `key`, while its entry lasts."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() < entry[1]:
            return entry[0]
        del self._entries[key]
        return None

    def put(self, key: CacheKey, principal: Principal, expires_at: float | None) -> None:
        """Remember an allow for `seconds`, never past `expires_at` (the token's `exp`); the oldest
        entry is dropped when full."""
        now = self.clock()
        until = now + self.seconds if expires_at is None else min(now + self.seconds, expires_at)
        if until <= now or self.maxsize <= 0:
            return
        if len(self._entries) >= self.maxsize and key not in self._entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (principal, until)

    def __len__(self) -> int:
        return len(self._entries)
