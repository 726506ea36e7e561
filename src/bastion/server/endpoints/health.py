"""Health checks for orchestrators and load balancers (docs/operations.md, "Health checks").

`/health/live` says the process serves requests (restart it when this fails); `/health/ready`
says it can serve them now: the database answers and its schema is at the migrations' head, and
Redis answers when one is configured (send it traffic only while this is 200). `/health` is
the liveness check's older name. Each dependency gets about a second; a failing one is named,
never described (the reason goes to the log, at most every `WARN_SECONDS`).

The readiness of a process is checked at most once per `CACHE_SECONDS`, by one check that every
probe arriving meanwhile shares: a flood of probes costs the database one query a second.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Final

import structlog
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from bastion.ratelimit import RedisStore
from bastion.server.context import ServerContext
from bastion.server.responses import NO_STORE, json_response

# Seconds each dependency has to answer: a readiness probe is asked every few seconds, and one
# that hangs would stall the prober instead of telling it something.
CHECK_SECONDS: Final = 1.0
# How long one readiness answer is reused, and the least time between two "not_ready" warnings.
CACHE_SECONDS: Final = 1.0
WARN_SECONDS: Final = 10.0


async def live_endpoint(request: Request) -> Response:
    """200 while the process answers requests: nothing else is consulted."""
    return json_response({"status": "ok"}, headers=dict(NO_STORE))


async def redis_readiness(ctx: ServerContext, seconds: float = CHECK_SECONDS) -> str | None:
    """None when Redis is not configured or answers a PING within `seconds`; else why not."""
    store = ctx.limits.limiter.store
    if ctx.settings.redis_url is None or not isinstance(store, RedisStore):
        return None
    try:
        async with asyncio.timeout(seconds):
            await store.client.ping()
    except (RedisError, OSError) as exc:  # OSError: TimeoutError too
        return f"unreachable: {type(exc).__name__}: {exc or 'timed out'}"
    return None


class Readiness:
    """The dependencies' readiness, checked by one task at a time and reused for `CACHE_SECONDS`.

    `checks` counts the checks run (what a flood of probes costs the database and Redis).
    """

    def __init__(self, ctx: ServerContext, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.clock = clock
        self.checks = 0
        self._checked_at = -math.inf
        self._failing: dict[str, str] = {}
        self._running: asyncio.Future[dict[str, str]] | None = None
        self._warned_at = -math.inf

    async def failing(self) -> dict[str, str]:
        """The dependencies that are not ready, each with why (for the log)."""
        if self.clock() - self._checked_at < CACHE_SECONDS:
            return self._failing
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
        # Shielded: a probe that disconnects does not cancel the check the others wait for.
        return await asyncio.shield(self._running)

    async def _check(self) -> dict[str, str]:
        try:
            self.checks += 1
            reasons = await asyncio.gather(self.ctx.database.readiness(CHECK_SECONDS), redis_readiness(self.ctx))
            failing = {name: reason for name, reason in zip(("database", "redis"), reasons, strict=True) if reason}
            self._failing, self._checked_at = failing, self.clock()
            if failing and self._checked_at - self._warned_at >= WARN_SECONDS:
                self._warned_at = self._checked_at
                structlog.get_logger("bastion").warning("not_ready", **failing)
            return failing
        finally:
            self._running = None


def readiness(request: Request) -> Readiness:
    """This app's one `Readiness`, made at its first probe."""
    state = request.app.state
    if getattr(state, "readiness", None) is None:
        state.readiness = Readiness(state.ctx)
    found: Readiness = state.readiness
    return found


async def ready_endpoint(request: Request) -> Response:
    """200 when every dependency is ready; 503 naming the ones that are not."""
    failing = await readiness(request).failing()
    if not failing:
        return json_response({"status": "ok"}, headers=dict(NO_STORE))
    return json_response({"status": "unavailable", "failing": list(failing)}, 503, dict(NO_STORE))
