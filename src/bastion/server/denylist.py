"""Revoked access tokens, by jti: in the database always (the source of truth), and in Redis when
configured, where resource servers without database access learn of them (README "Resource
servers"):

- the key `bastion:revoked:jti:{jti}`, value the token's exp, for a reader catching up;
- a message `{"jti": ..., "exp": ...}` (JSON) on the channel `bastion:revocations`, for a
  subscriber (the guard's `RedisRevocationSubscriber`) told at once.

Both are written in one MULTI/EXEC round trip, so a subscriber that scans the keys after
subscribing misses nothing. The key lives until `exp` plus the largest clock leeway
(`revocations.LEEWAY_MARGIN`): a validator accepts a token until `exp + leeway`, so a key gone at
`exp` let a resource server that synchronised late accept a revoked token again.

Redis is a copy: when it fails, a revocation is still recorded (and answered 200), reads fall
back to the database, and resource servers fall back to the database feed (`/revocations`).
After a failure Redis is left alone for `REDIS_PAUSE` seconds, so an outage costs each request
nothing more than the database read it needs anyway, instead of the client's reconnect retries.
"""

from __future__ import annotations

import json
import time

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bastion.store import Database, revocations

REVOKED_KEY = "bastion:revoked:jti:{jti}"
REVOCATION_CHANNEL = "bastion:revocations"
REDIS_PAUSE = 1.0

_log = structlog.get_logger("bastion.server")


class AccessTokenDenylist:
    """The server's record of revoked access tokens, shared by every process."""

    def __init__(self, database: Database, redis: Redis | None) -> None:
        self._database = database
        self._redis = redis
        self._redis_paused_until = float("-inf")

    async def revoke(self, jti: str, client_id: str, exp: int) -> None:
        """RFC 7009 §2.1: the token is invalid from now on, everywhere."""
        now = int(time.time())
        await revocations.record(self._database, jti, client_id, exp, now)
        kept_until = exp + revocations.LEEWAY_MARGIN
        redis = self._usable_redis()
        if redis is None or kept_until <= now:
            return
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.set(REVOKED_KEY.format(jti=jti), str(exp), ex=kept_until - now)
                pipe.publish(REVOCATION_CHANNEL, json.dumps({"jti": jti, "exp": exp}))
                await pipe.execute()
        except (RedisError, OSError) as error:
            # Recorded in the database above: introspection, userinfo and `/revocations` refuse it.
            self._pause(error)

    async def is_revoked(self, jti: str) -> bool:
        redis = self._usable_redis()
        if redis is not None:
            try:
                if await redis.exists(REVOKED_KEY.format(jti=jti)):
                    return True
            except (RedisError, OSError) as error:
                self._pause(error)
        return await revocations.is_revoked(self._database, jti)

    def _usable_redis(self) -> Redis | None:
        if self._redis is None or time.monotonic() < self._redis_paused_until:
            return None
        return self._redis

    def _pause(self, error: Exception) -> None:
        _log.warning("revocation_redis_unavailable", error=f"{type(error).__name__}: {error}", pause=REDIS_PAUSE)
        self._redis_paused_until = time.monotonic() + REDIS_PAUSE

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
