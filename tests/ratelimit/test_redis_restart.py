"""A private Redis killed mid-run and restarted: failure modes, recovery, script reloading,
and one round trip per decision. The shared Redis is never stopped.
"""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bastion.ratelimit import (
    Metrics,
    Policy,
    RateLimiter,
    RateLimitMiddleware,
    RedisStore,
)
from tests.ratelimit._redis_server import RedisServer
from tests.ratelimit.conftest import FakeClock

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

ALGORITHMS = ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def test_redis_killed_mid_run_fails_open_or_closed_and_recovers(
    redis_server: RedisServer,
) -> None:
    """Killing Redis gives each route its configured answer (never 500); restarting restores
    counting, with the scripts re-loaded into the new server."""
    metrics = Metrics()
    policies = [
        Policy("open", 2, 3600.0, "gcra", on_store_error="open", routes=("/open",)),
        Policy("closed", 2, 3600.0, "sliding_log", on_store_error="closed", routes=("/closed",)),
    ]
    store = RedisStore(redis_server.url, key_prefix="restart:", timeout=10)
    limiter = RateLimiter(store, policies, metrics=metrics)
    app = RateLimitMiddleware(Starlette(routes=[Route("/open", ok), Route("/closed", ok)]), limiter)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

        async def statuses(path: str, count: int) -> list[int]:
            return [(await http.get(path)).status_code for _ in range(count)]

        before = (await statuses("/open", 1), await statuses("/closed", 1))
        redis_server.kill()
        down = (await statuses("/open", 3), await statuses("/closed", 3))
        refused = await http.get("/closed")
        redis_server.start()
        after = (await statuses("/open", 3), await statuses("/closed", 3))
    await store.aclose()
    assert before == ([200], [200])
    assert down == ([200, 200, 200], [429, 429, 429])
    assert (refused.headers["retry-after"], refused.json()["error"]) == ("1", "rate_limited")
    # The restarted server is empty: each policy admits its full limit again, then refuses.
    assert after == ([200, 200, 429], [200, 200, 429])
    assert metrics.value("bastion_ratelimit_store_errors_total", policy="open", mode="open") == 3
    assert metrics.value("bastion_ratelimit_store_errors_total", policy="closed",
                         mode="closed") == 4
    assert metrics.value("bastion_redis_errors_total", component="ratelimit") == 7
    assert 'bastion_redis_errors_total{component="ratelimit"} 7.0' in metrics.render()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_scripts_survive_a_script_flush(
    redis_server: RedisServer, clock: FakeClock, algorithm: str
) -> None:
    """After SCRIPT FLUSH the next decision re-loads its script instead of failing NOSCRIPT."""
    store = RedisStore(redis_server.url, key_prefix="flush:", timeout=10)
    limiter = RateLimiter(store, [Policy("p", 2, 60.0, algorithm)],  # type: ignore[arg-type]  # algorithm and mode names are plain str here
                          clock=clock, metrics=Metrics())
    first = await limiter.hit("p", "k")
    await store.client.script_flush()
    second = await limiter.hit("p", "k")
    third = await limiter.hit("p", "k")
    await store.aclose()
    assert [(d.allowed, d.degraded) for d in (first, second, third)] == [
        (True, False), (True, False), (False, False),
    ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_one_round_trip_per_decision(
    redis_server: RedisServer, clock: FakeClock, algorithm: str
) -> None:
    """Once its script is loaded, each decision is exactly one EVALSHA (commandstats also list
    the commands the scripts run inside, so those are not client round trips)."""
    store = RedisStore(redis_server.url, key_prefix="rtt:", timeout=10)
    limiter = RateLimiter(store, [Policy("p", 5, 60.0, algorithm)],  # type: ignore[arg-type]  # algorithm and mode names are plain str here
                          clock=clock, metrics=Metrics())
    await limiter.hit("p", "warm-up")
    observer = aioredis.from_url(redis_server.url)
    await observer.config_resetstat()
    for _ in range(7):
        await limiter.hit("p", "k")
    await limiter.check("p", "k")
    stats = await observer.info("commandstats")
    await observer.aclose()
    await store.aclose()
    top_level = {name: value["calls"] for name, value in stats.items()
                 if name in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_script|load")}
    assert top_level == {"cmdstat_evalsha": 8}


async def test_a_store_keeps_one_connection_for_sequential_decisions_and_returns_it_on_close(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    """Sequential decisions reuse one connection (no pool checkout per decision); a client the
    caller owns gets every connection back when the store closes."""
    client = aioredis.from_url(redis_server.url)
    store = RedisStore(client, key_prefix="spare:")
    limiter = RateLimiter(store, [Policy("p", 50, 60.0, "gcra")], clock=clock, metrics=Metrics())
    for _ in range(10):
        await limiter.hit("p", "k")
    pool = client.connection_pool
    assert (len(pool._in_use_connections), len(pool._available_connections)) == (1, 0)

    await store.aclose()

    assert (len(pool._in_use_connections), len(pool._available_connections)) == (0, 1)
    assert await client.ping()
    await client.aclose()


async def test_a_kept_connection_killed_by_a_restart_is_replaced(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    """The connection the store keeps dies with the server; the next decision after the restart
    fails over to the policy's failure mode at worst, and the one after it is decided by Redis."""
    store = RedisStore(redis_server.url, key_prefix="spare:", timeout=2)
    limiter = RateLimiter(store, [Policy("p", 50, 60.0, "gcra")], clock=clock, metrics=Metrics())
    assert not (await limiter.hit("p", "k")).degraded
    redis_server.kill()
    redis_server.start()
    await limiter.hit("p", "k")
    after = await limiter.hit("p", "k")
    await store.aclose()
    assert after.allowed
    assert not after.degraded
