"""Feeding the local denylist from the authorization server's revocation channels.

Never a call per request: a background task polls one of the two channels Bastion's token
service publishes and adds what it finds to the `Denylist` the validator reads.

- Redis: keys `bastion:revoked:jti:{jti}` whose value is the token's exp (TTL until exp).
- HTTP: `GET {issuer}/revocations?since=T` with client authentication, answering
  `{"revocations": [{"jti", "exp", "revoked_at"}], "until": T2}`; the next poll uses since=T2.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bastion.guard._denylist import Denylist
from bastion.guard._feeds import run_periodically
from bastion.guard._fetch import FetchError, fetch_json

__all__ = [
    "REDIS_PREFIX",
    "HttpRevocationPoller",
    "RedisRevocationSync",
    "run_periodically",
]

log = logging.getLogger("bastion.guard")

REDIS_PREFIX = "bastion:revoked:jti:"


class HttpRevocationPoller:
    """Polls `{issuer}/revocations` with client_secret_basic (RFC 6749 §2.3.1)."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        denylist: Denylist,
        http: httpx.AsyncClient,
        since: int = 0,
    ) -> None:
        self.url = url
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self.denylist = denylist
        self.http = http
        self.since = since

    async def poll(self) -> int:
        """Fetch revocations since the last `until` and add them.

        Raises:
            FetchError: the endpoint failed; the cursor is kept so nothing is missed.
        """
        fetched = await fetch_json(self.http, self.url, auth=self._auth, params={"since": str(self.since)})
        return self.apply(fetched.document)

    def apply(self, document: dict[str, Any]) -> int:
        """Sans-I/O half: add a response's revocations and advance the cursor."""
        items = document.get("revocations")
        until = document.get("until")
        if not isinstance(items, list) or not isinstance(until, int):
            raise FetchError("revocations response lacks revocations or until")
        added = 0
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("jti"), str):
                exp = item.get("exp")
                self.denylist.add(item["jti"], float(exp) if isinstance(exp, int) else float("inf"))
                added += 1
        self.since = until
        return added


class RedisRevocationSync:
    """Reads the `bastion:revoked:jti:*` keys (redis.asyncio client) into the denylist."""

    def __init__(self, redis: Any, *, denylist: Denylist, prefix: str = REDIS_PREFIX) -> None:
        self.redis = redis
        self.denylist = denylist
        self.prefix = prefix

    async def poll(self) -> int:
        """One SCAN over the revocation keys; returns how many were new."""
        keys: list[Any] = [k async for k in self.redis.scan_iter(match=self.prefix + "*", count=500)]
        new = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            values = await self.redis.mget(chunk)
            for key, value in zip(chunk, values, strict=True):
                name = key.decode() if isinstance(key, bytes) else str(key)
                jti = name[len(self.prefix) :]
                if jti in self.denylist:
                    continue
                try:
                    exp = float(value)
                except (TypeError, ValueError):
                    exp = float("inf")
                self.denylist.add(jti, exp)
                new += 1
        return new
