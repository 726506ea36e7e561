"""The local copy of the authorization server's revocations, fed by a poller, read per request.

Sans-I/O: the Redis and HTTP channels (see `revocation`) only call `add`; the validator reads it
with a set lookup, so revocation costs no network call per request.

An entry is kept until its token's `exp` plus the clock leeway: the validator accepts a token
until `exp + leeway` (RFC 9068 §4, RFC 7519 §4.1.4), so an entry dropped at `exp` let a revoked
token back in for the leeway.
"""

from __future__ import annotations

from collections.abc import Callable, KeysView

from bastion.protocol.rfc9068 import DEFAULT_LEEWAY

__all__ = ["Denylist"]


class Denylist:
    """Revoked token ids (`jti`) with the time each token would have expired anyway.

    Args:
        leeway: seconds past `exp` an entry is kept; at least the largest leeway of any
            validator reading this list (`Authenticator` raises it to its issuers' largest).
    """

    __slots__ = ("_listeners", "_revoked", "leeway")

    def __init__(self, *, leeway: float = DEFAULT_LEEWAY) -> None:
        self._revoked: dict[str, float] = {}
        self._listeners: list[Callable[[str], None]] = []
        self.leeway = leeway

    def keep_for(self, leeway: float) -> None:
        """Keep entries at least `leeway` seconds past `exp` (a validator accepts tokens that long)."""
        self.leeway = max(self.leeway, leeway)

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
        """Drop entries for tokens no validator accepts any more (past `exp + leeway`); returns how
        many were dropped."""
        horizon = now - self.leeway
        gone = [jti for jti, exp in self._revoked.items() if exp < horizon]
        for jti in gone:
            del self._revoked[jti]
        return len(gone)

    def __len__(self) -> int:
        return len(self._revoked)
