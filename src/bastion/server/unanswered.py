"""Refresh-token rotations the server could not answer: a retry of the token takes them over.

A rotation is one statement (`store.refresh_tokens.rotate`); the database may commit it and the
server still not answer it, when the connection breaks between the commit and its reply (the
database stopped or failed over at that instant). The server then answers 503 and the client,
as it should, retries with the same token, which is now spent: without this record, reuse
detection (RFC 9700 §4.14.2) would revoke the family of a client that did nothing wrong.

So when a rotation fails, the grant records the presented token's hash with the hash of the
successor it tried to store, for as long as that successor could live. When the same token is
presented again and found spent, the grant takes the record and rotates the successor instead,
if it is still live (never presented, never revoked): the successor's value never left the
server, so the client that retries is the only one that can hold it. If the successor was used
or revoked, or there is no record, the reuse is what it looks like and the family is revoked.
A record is taken once; a rotation that did not commit leaves one that nothing ever matches.

The record lives in Redis when configured (a retry may reach another worker) and in this
process always (Redis may be what failed). Only hashes are kept, never a token.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

KEY = "bastion:unanswered:refresh:{token_hash}"
CAPACITY = 10_000  # records kept in this process; the oldest go first
_log = structlog.get_logger("bastion.server")


class UnansweredRotations:
    """token hash -> hash of the successor its failed rotation tried to store."""

    def __init__(self, redis: Redis | None, lifetime: int) -> None:
        self._redis = redis
        self._lifetime = lifetime
        # token hash -> (successor hash, expiry on the monotonic clock, written to Redis too)
        self._local: OrderedDict[str, tuple[str, float, bool]] = OrderedDict()

    async def note(self, token_hash: str, successor_hash: str) -> None:
        """The rotation of `token_hash` failed, perhaps after its commit."""
        shared = False
        if self._redis is not None:
            try:
                await self._redis.set(KEY.format(token_hash=token_hash), successor_hash, ex=self._lifetime)
                shared = True
            except (RedisError, OSError) as error:
                _log.warning("unanswered_rotation_not_shared", error=f"{type(error).__name__}: {error}")
        self._local[token_hash] = (successor_hash, time.monotonic() + self._lifetime, shared)
        while len(self._local) > CAPACITY:
            self._local.popitem(last=False)

    async def take(self, token_hash: str) -> str | None:
        """The successor recorded for `token_hash`, forgotten as it is returned; None if none.
        A record kept in Redis is Redis's to give (another worker may have taken it); one that
        could not be shared is this process's."""
        local = self._local.pop(token_hash, None)
        if self._redis is not None and (local is None or local[2]):
            try:
                shared = await self._redis.getdel(KEY.format(token_hash=token_hash))
            except (RedisError, OSError) as error:
                _log.warning("unanswered_rotation_not_shared", error=f"{type(error).__name__}: {error}")
            else:
                return None if shared is None else shared.decode() if isinstance(shared, bytes) else str(shared)
        if local is not None and local[1] > time.monotonic():
            return local[0]
        return None

    async def aclose(self) -> None:
        self._local.clear()
