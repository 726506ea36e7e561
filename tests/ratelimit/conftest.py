"""Fixtures: an injectable clock, both stores, and a private Redis for restart tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from bastion.ratelimit import MemoryStore, Metrics, Policy, RateLimiter, RedisStore, Store
from tests._services import need_redis
from tests.ratelimit._redis_server import RedisServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prefix() -> str:
    return f"bastion-test:{uuid.uuid4().hex}:"


async def _cleanup(url: str, prefix: str) -> None:
    client = aioredis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def redis_store(prefix: str) -> AsyncIterator[RedisStore]:
    url = need_redis()
    store = RedisStore(url, key_prefix=prefix, timeout=10, expiry_margin=600)
    yield store
    await store.aclose()
    await _cleanup(url, prefix)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Store]:
    """Both stores: every behaviour test runs on each and must give the same answers."""
    if request.param == "memory":
        yield MemoryStore()
        return
    url = need_redis()
    redis_store = RedisStore(url, key_prefix=prefix, timeout=10, expiry_margin=600)
    yield redis_store
    await redis_store.aclose()
    await _cleanup(url, prefix)


LimiterFactory = Callable[..., RateLimiter]


@pytest.fixture
def make_limiter(store: Store, clock: FakeClock) -> LimiterFactory:
    def make(*policies: Policy) -> RateLimiter:
        return RateLimiter(store, policies, clock=clock, metrics=Metrics())

    return make


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()
