"""The guard's bearer-token validator: the shared RFC 9068 core plus a cache and a denylist.

The rules are `bastion.protocol.rfc9068`'s, the same the authorization server applies. What the
guard adds is per-process state the server has no use for: a verified-token cache (a hot token
costs a dictionary lookup) and the local denylist fed by revocation feeds, consulted on every
hit so that a revoked token never outlives its revocation here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from bastion.guard._cache import VerifiedTokenCache
from bastion.guard._denylist import Denylist
from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose import KeySet
from bastion.protocol.rfc9068 import AccessToken, AccessTokenValidator, TrustedIssuer

__all__ = ["BearerTokenValidator"]


class BearerTokenValidator(AccessTokenValidator):
    """Validate JWT access tokens (RFC 9068 §4) from trusted issuers, cached, honouring revocations."""

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer] = (),
        *,
        cache_size: int = 10_000,
        denylist: Denylist | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = VerifiedTokenCache(cache_size)
        self.denylist = denylist if denylist is not None else Denylist()
        self.denylist.on_revoke(self.cache.discard_jti)
        self.clock = clock
        super().__init__(issuers)

    def trust(self, issuer: TrustedIssuer, keys: KeySet | None = None) -> None:
        """Trust an issuer; its revoked tokens stay on the denylist until `exp + leeway`, as long
        as `verify` accepts them."""
        super().trust(issuer, keys)
        self.denylist.keep_for(issuer.leeway)

    def validate(self, token: str, now: float | None = None) -> AccessToken:
        """Validate a JWT access token, from the cache when it was verified before.

        Raises:
            InvalidToken: for any reason; `UnknownIssuer`/`UnknownKey` when new metadata
                might help.
        """
        if now is None:
            now = self.clock()
        cached = self.cache.get(token, now)
        if cached is not None:
            if cached.jti is not None and cached.jti in self.denylist:
                raise InvalidToken("revoked")
            return cached
        access_token = self.verify(token, now)
        if access_token.jti is not None and access_token.jti in self.denylist:
            raise InvalidToken("revoked")
        self.cache.put(token, access_token)
        return access_token
