"""Health checks for orchestrators and load balancers (docs/operations.md, "Health checks").

`/health/live` says the process serves requests (restart it when this fails); `/health/ready`
says it can serve them now: the database answers and its schema is at the migrations' head, and
Redis answers when one is configured (send it traffic only while this is 200). `/health` is
the liveness check's older name. Each dependency gets about a second; a failing one is named,
never described (the reason goes to the log).
"""

from __future__ import annotations

import asyncio
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


async def ready_endpoint(request: Request) -> Response:
    """200 when every dependency is ready; 503 naming the ones that are not."""
    ctx: ServerContext = request.app.state.ctx
    reasons = await asyncio.gather(ctx.database.readiness(CHECK_SECONDS), redis_readiness(ctx))
    failing = {name: reason for name, reason in zip(("database", "redis"), reasons, strict=True) if reason}
    if not failing:
        return json_response({"status": "ok"}, headers=dict(NO_STORE))
    structlog.get_logger("bastion").warning("not_ready", **failing)
    return json_response({"status": "unavailable", "failing": list(failing)}, 503, dict(NO_STORE))
