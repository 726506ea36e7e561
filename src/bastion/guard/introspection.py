"""Opaque tokens: RFC 7662 introspection with a bounded cache.

Results are cached (keyed by a SHA-256 of the token, never the token itself in logs) until the
token's exp but at most `max_ttl` seconds, so a revocation at the server is seen within
`max_ttl`; inactive answers are cached briefly so that garbage tokens cannot turn every
request into a call to the issuer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx

from bastion.guard._denylist import Denylist
from bastion.guard._fetch import FetchError, fetch_json
from bastion.guard._principal import Principal
from bastion.protocol.errors import InvalidToken
from bastion.protocol.rfc9068 import AccessToken

__all__ = ["IntrospectionClient"]


class IntrospectionClient:
    """Introspects opaque tokens at the issuer's RFC 7662 endpoint."""

    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        issuer: str,
        audience: str,
        http: httpx.AsyncClient,
        cache_size: int = 10_000,
        max_ttl: float = 60.0,
        negative_ttl: float = 5.0,
        denylist: Denylist | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self.issuer = issuer
        self.audience = audience
        self.http = http
        self.cache_size = cache_size
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.denylist = denylist
        self.clock = clock
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}
        self.calls = 0

    async def introspect(self, token: str) -> Principal:
        """The principal for an active token.

        Raises:
            InvalidToken: inactive, for another audience, or the endpoint failed (fail closed).
        """
        key = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached[0]:
            principal = cached[1]
        else:
            principal, until = await self._ask(token, now)
            if len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = (until, principal)
        if principal is None:
            raise InvalidToken("inactive (introspection)")
        jti = principal.token.jti if principal.token else None
        if self.denylist is not None and jti is not None and jti in self.denylist:
            raise InvalidToken("revoked")
        return principal

    async def _ask(self, token: str, now: float) -> tuple[Principal | None, float]:
        self.calls += 1
        try:
            fetched = await fetch_json(
                self.http,
                self.endpoint,
                method="POST",
                auth=self._auth,
                data={"token": token, "token_type_hint": "access_token"},
            )
        except FetchError as exc:
            raise InvalidToken(f"introspection failed: {exc}") from exc
        return self.decide(fetched.document, now)

    def decide(self, answer: dict[str, Any], now: float) -> tuple[Principal | None, float]:
        """Sans-I/O half: the principal (or None) and how long to cache the answer."""
        negative = (None, now + self.negative_ttl)
        if answer.get("active") is not True:
            return negative
        aud = answer.get("aud")
        audiences = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        exp = answer.get("exp")
        if self.audience not in audiences or not isinstance(exp, int) or exp <= now:
            return negative
        if answer.get("iss", self.issuer) != self.issuer:
            return negative
        scope = answer.get("scope")
        roles = answer.get("roles")
        access_token = AccessToken(
            issuer=self.issuer,
            subject=str(answer.get("sub") or answer.get("client_id") or ""),
            client_id=str(answer.get("client_id") or ""),
            audience=tuple(str(a) for a in audiences),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            roles=frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset(),
            expires_at=exp,
            issued_at=answer.get("iat") if isinstance(answer.get("iat"), int) else None,
            jti=answer.get("jti") if isinstance(answer.get("jti"), str) else None,
            claims=answer,
        )
        if not access_token.subject:
            return negative
        return Principal.from_token(access_token), min(float(exp), now + self.max_ttl)
