"""The local copy of the authorization server's revocations, fed by a poller, read per request.

Sans-I/O: the Redis and HTTP channels (see `revocation`) only call `add`; the validator reads it
with a set lookup, so revocation costs no network call per request.
"""

from __future__ import annotations

from collections.abc import Callable, KeysView

__all__ = ["Denylist"]


class Denylist:
    """Revoked token ids (`jti`) with the time each token would have expired anyway."""

    __slots__ = ("_listeners", "_revoked")

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        self._listeners: list[Callable[[str], None]] = []

    def add(self, jti: str, exp: float) -> None:
        """Record a revocation and tell listeners (the verified-token cache) to forget it."""
        new = jti not in self._revoked
        self._revoked[jti] = exp
        if new:
            for listener in self._listeners:
                listener(jti)

    def on_revoke(self, listener: Callable[[str], None]) -> None:
        """Call `listener(jti)` for every new revocation."""
        self._listeners.append(listener)

    def __contains__(self, jti: object) -> bool:
        return jti in self._revoked

    @property
    def ids(self) -> KeysView[str]:
        """A live read-only view of the revoked ids: `jti in view` with no Python call, for
        the per-request check of a cached token."""
        return self._revoked.keys()

    def prune(self, now: float) -> int:
        """Drop entries for tokens that have expired anyway; returns how many were dropped."""
        gone = [jti for jti, exp in self._revoked.items() if exp < now]
        for jti in gone:
            del self._revoked[jti]
        return len(gone)

    def __len__(self) -> int:
        return len(self._revoked)
