"""A bounded cache of verified tokens so that a hot token costs a dictionary lookup.

Entries live until the token's `exp` and are dropped on revocation (the validator checks the
denylist on every hit, so a revoked token never outlives its revocation here). When full, the
oldest entry is evicted: insertion order is free in a dict and good enough for a hot set.
"""

from __future__ import annotations

from bastion.protocol.rfc9068 import AccessToken

__all__ = ["VerifiedTokenCache"]


class VerifiedTokenCache:
    """Token string to validated AccessToken, bounded by `maxsize` entries."""

    __slots__ = ("_entries", "maxsize")

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._entries: dict[str, AccessToken] = {}

    def get(self, token: str, now: float) -> AccessToken | None:
        """The cached token if present and not yet expired."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self._entries[token]
            return None
        return entry

    def put(self, token: str, access_token: AccessToken) -> None:
        """Remember a verified token, evicting the oldest entry when full."""
        if self.maxsize <= 0:
            return
        if len(self._entries) >= self.maxsize and token not in self._entries:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = access_token

    def discard_jti(self, jti: str) -> None:
        """Forget every cached token with this jti (called on revocation)."""
        for key in [k for k, v in self._entries.items() if v.jti == jti]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
