"""Feeding the local denylist from the authorization server's revocation channels.

Never a call per request: a background task polls one of the two channels Bastion's token
service publishes and adds what it finds to the `Denylist` the validator reads.

- Redis: keys `bastion:revoked:jti:{jti}` whose value is the token's exp (TTL until exp).
- HTTP: `GET {issuer}/revocations?cursor=C` with client authentication, answering
  `{"revocations": [{"jti", "exp", "revoked_at"}], "cursor": C2, "more": bool}` a page at a
  time; a poll follows the cursor while `more`, and the next poll starts at the last cursor.
  The cursor is opaque. (An issuer that answers only `until` is polled with `since=until`.)
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
    """Polls `{issuer}/revocations` with client_secret_basic (RFC 6749 §2.3.1).

    Args:
        page_size: the `limit` asked for (None: the issuer's default page).
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        denylist: Denylist,
        http: httpx.AsyncClient,
        since: int = 0,
        page_size: int | None = None,
    ) -> None:
        self.url = url
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self.denylist = denylist
        self.http = http
        self.since = since
        self.cursor: str | None = None
        self.page_size = page_size

    async def poll(self) -> int:
        """Fetch every page of revocations after the cursor and add them; returns how many.

        Raises:
            FetchError: the endpoint failed; the cursor stays after the last page applied, so
                nothing is missed.
        """
        added = 0
        while True:
            params = {"cursor": self.cursor} if self.cursor is not None else {"since": str(self.since)}
            if self.page_size is not None:
                params["limit"] = str(self.page_size)
            before = (self.cursor, self.since)
            fetched = await fetch_json(self.http, self.url, auth=self._auth, params=params)
            added += self.apply(fetched.document)
            # A full page always moves the cursor; one that does not (a misbehaving issuer) ends
            # the poll rather than asking for the same page forever.
            if fetched.document.get("more") is not True or (self.cursor, self.since) == before:
                return added

    def apply(self, document: dict[str, Any]) -> int:
        """Sans-I/O half: add a page's revocations and advance the cursor; returns how many were
        new (the issuer lists its last few seconds again on the next poll, see `poll`)."""
        items = document.get("revocations")
        cursor = document.get("cursor")
        until = document.get("until")
        if not isinstance(items, list) or not (isinstance(cursor, str) or isinstance(until, int)):
            raise FetchError("revocations response lacks revocations or cursor")
        added = 0
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("jti"), str):
                exp = item.get("exp")
                added += item["jti"] not in self.denylist
                self.denylist.add(item["jti"], float(exp) if isinstance(exp, int) else float("inf"))
        if isinstance(cursor, str):
            self.cursor = cursor
        elif isinstance(until, int):
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
