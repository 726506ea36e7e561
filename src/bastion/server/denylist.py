"""Revoked access tokens, by jti: in the database always, and in Redis when configured, under a
documented key that resource servers without database access read (`bastion:revoked:jti:{jti}`,
value the token's exp; README "Resource servers").

The Redis key lives until `exp` plus the largest clock leeway (`revocations.LEEWAY_MARGIN`): a
validator accepts a token until `exp + leeway`, so a key gone at `exp` let a resource server that
synchronised late accept a revoked token again.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from bastion.store import Database, revocations

REVOKED_KEY = "bastion:revoked:jti:{jti}"


class AccessTokenDenylist:
    """The server's record of revoked access tokens, shared by every process."""

    def __init__(self, database: Database, redis: Redis | None) -> None:
        self._database = database
        self._redis = redis

    async def revoke(self, jti: str, client_id: str, exp: int) -> None:
        """RFC 7009 §2.1: the token is invalid from now on, everywhere."""
        now = int(time.time())
        await revocations.record(self._database, jti, client_id, exp, now)
        kept_until = exp + revocations.LEEWAY_MARGIN
        if self._redis is not None and kept_until > now:
            await self._redis.set(REVOKED_KEY.format(jti=jti), str(exp), ex=kept_until - now)

    async def is_revoked(self, jti: str) -> bool:
        if self._redis is not None and await self._redis.exists(REVOKED_KEY.format(jti=jti)):
            return True
        return await revocations.is_revoked(self._database, jti)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
