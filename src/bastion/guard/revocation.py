"""Feeding the local denylist from the authorization server's revocation channels.

Never a call per request: a background task polls one of the two channels Bastion's token
service publishes and adds what it finds to the `Denylist` the validator reads.

- Redis: keys `bastion:revoked:jti:{jti}` whose value is the token's exp (TTL until exp plus the
  largest leeway), and a message `{"jti", "exp"}` (JSON) on the channel `bastion:revocations`
  for each revocation, written in the same MULTI/EXEC. `RedisRevocationSubscriber` listens (a
  revocation is refused here within a round trip of being made) and falls back to the HTTP
  feed while Redis is unreachable; `RedisRevocationSync` only scans the keys.
- HTTP: `GET {issuer}/revocations?cursor=C` with client authentication, answering
  `{"revocations": [{"jti", "exp", "revoked_at"}], "cursor": C2, "more": bool}` a page at a
  time; a poll follows the cursor while `more`, and the next poll starts at the last cursor.
  The cursor is opaque. (An issuer that answers only `until` is polled with `since=until`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from redis.exceptions import RedisError

from bastion.guard._denylist import Denylist
from bastion.guard._feeds import Pollable, run_periodically
from bastion.guard._fetch import FetchError, fetch_json

__all__ = [
    "REDIS_CHANNEL",
    "REDIS_PREFIX",
    "HttpRevocationPoller",
    "RedisRevocationSubscriber",
    "RedisRevocationSync",
    "run_periodically",
]

log = logging.getLogger("bastion.guard")

REDIS_PREFIX = "bastion:revoked:jti:"
REDIS_CHANNEL = "bastion:revocations"
# What a lost Redis raises: redis-py's errors, and the socket's own on a connection cut mid-read.
_REDIS_DOWN = (RedisError, OSError, ConnectionError, TimeoutError)


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


class RedisRevocationSubscriber:
    """Listens on `bastion:revocations` and adds each revocation to the denylist as it is made.

    Every time the subscription is confirmed (at start, and after any reconnection, whether the
    redis client reconnected by itself or this loop did) it catches up: one SCAN of the
    revocation keys, and one poll of `fallback`. Subscribing comes first, so a revocation
    published during the catch-up is not missed; the fallback poll finds revocations the server
    could record only in its database while Redis was down. While Redis is unreachable the
    fallback is polled every `fallback_interval` seconds, and Redis is tried again after a
    backoff that doubles from `backoff[0]` to `backoff[1]` seconds. While listening, the
    fallback is still polled every `reconcile_interval` seconds: a revocation the server could
    write only to its database (a Redis error at that instant, not seen as an outage here)
    reaches the guard within that bound.

    Run it as a revocation feed of the `Authenticator` (which calls `run`), or call `run` in a
    task of your own. A dead connection is noticed when its socket fails; on a network that
    drops packets silently, give the client `health_check_interval` and `socket_timeout`.

    Args:
        redis: a redis.asyncio client, for the subscription and the key scans.
        fallback: the database feed, usually an `HttpRevocationPoller` on the same denylist.
    """

    PRUNE_EVERY = 5.0  # seconds between prunes of the denylist (as the polling loop does)

    def __init__(
        self,
        redis: Any,
        *,
        denylist: Denylist,
        fallback: Pollable | None = None,
        channel: str = REDIS_CHANNEL,
        prefix: str = REDIS_PREFIX,
        fallback_interval: float = 5.0,
        reconcile_interval: float = 30.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.denylist = denylist
        self.fallback = fallback
        self.channel = channel
        self.fallback_interval = fallback_interval
        self.reconcile_interval = reconcile_interval
        self.backoff = backoff
        self.clock = clock
        self._keys = RedisRevocationSync(redis, denylist=denylist, prefix=prefix)
        self._listening = False
        self._using_fallback = False
        self._next_prune = float("-inf")

    @property
    def listening(self) -> bool:
        """Subscribed and caught up: revocations arrive as they are published."""
        return self._listening

    @property
    def using_fallback(self) -> bool:
        """Redis is unreachable and the fallback (database) feed is polled instead."""
        return self._using_fallback

    async def poll(self) -> int:
        """Catch up once: the revocation keys, then the fallback; how many were new.

        Raises:
            RedisError, OSError: Redis is unreachable (the fallback is not polled then).
        """
        return await self._keys.poll() + await self._poll_fallback()

    async def run(self) -> None:
        """Listen until cancelled; fall back and reconnect with backoff while Redis is down."""
        delay = self.backoff[0]
        next_fallback = float("-inf")
        while True:
            try:
                await self._listen()
            except _REDIS_DOWN as exc:
                log.warning("guard: revocation channel unavailable: %r", exc)
            except Exception as exc:  # the subscriber must outlive a bad reply or a bug of a client
                log.exception("guard: revocation channel crashed: %r", exc)
            if self._listening:
                delay = self.backoff[0]  # it was up: the first retry comes soon again
            self._listening = False
            self._using_fallback = self.fallback is not None
            if self.clock() >= next_fallback:
                await self._poll_fallback()
                next_fallback = self.clock() + self.fallback_interval
            self._prune()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            next_reconcile = float("inf")
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "subscribe":
                    # Subscribed (again): what was published meanwhile is in the keys and the database.
                    await self.poll()
                    self._listening, self._using_fallback = True, False
                    next_reconcile = self.clock() + self.reconcile_interval
                elif message is not None and message["type"] == "message":
                    self._apply(message["data"])
                if self.clock() >= next_reconcile:
                    await self._poll_fallback()
                    next_reconcile = self.clock() + self.reconcile_interval
                self._prune()
        finally:
            with contextlib.suppress(*_REDIS_DOWN):  # the connection may be gone already
                await pubsub.aclose()

    def _apply(self, data: Any) -> None:
        """Sans-I/O half: add one published revocation (`{"jti": str, "exp": int}`)."""
        try:
            item = json.loads(data)
        except (TypeError, ValueError):
            item = None
        jti = item.get("jti") if isinstance(item, dict) else None
        exp = item.get("exp") if isinstance(item, dict) else None
        if not isinstance(jti, str) or not isinstance(exp, int) or isinstance(exp, bool):
            log.warning("guard: ignored a malformed message on %s", self.channel)
            return
        self.denylist.add(jti, float(exp))

    async def _poll_fallback(self) -> int:
        if self.fallback is None:
            return 0
        try:
            return await self.fallback.poll()
        except (FetchError, OSError, ConnectionError) as exc:
            log.warning("guard: revocation fallback poll failed: %r", exc)
        except Exception as exc:  # the subscriber must outlive a bad response
            log.exception("guard: revocation fallback poll crashed: %r", exc)
        return 0

    def _prune(self) -> None:
        now = self.clock()
        if now >= self._next_prune:
            self.denylist.prune(now)
            self._next_prune = now + self.PRUNE_EVERY
