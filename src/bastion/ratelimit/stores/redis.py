"""Counters in Redis, shared by every process: one EVALSHA round trip per decision.

Scripts run by their SHA1 (EVALSHA); a server that does not know one (after a restart or
SCRIPT FLUSH) answers NOSCRIPT, and the store loads the script and runs it again, so NOSCRIPT
never reaches the caller.
Connection errors become `StoreUnavailable`, which the limiter turns into the policy's
fail-open or fail-closed answer.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from bastion.ratelimit.algorithms import (
    Outcome,
    fixed_window,
    gcra,
    sliding_log,
    sliding_window,
    token_bucket,
)
from bastion.ratelimit.policy import Policy
from bastion.ratelimit.stores import _lua
from bastion.ratelimit.stores._base import StoreUnavailable


class RedisStore:
    """A store in Redis.

    Args:
        url_or_client: a `redis://` URL, or a `redis.asyncio.Redis` the caller owns.
        key_prefix: prepended to every key, so deployments and tests do not collide.
        timeout: socket timeout in seconds when built from a URL; a decision never waits
            longer than about twice this before the failure mode answers.
        expiry_margin: seconds keys outlive the moment their state stops mattering, for
            callers whose clocks lag Redis's (decisions use the callers' clocks).
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        key_prefix: str = "bastion:rl:",
        timeout: float = 0.5,
        expiry_margin: float = 1.0,
    ) -> None:
        if isinstance(url_or_client, str):
            # One immediate retry so a connection killed by a Redis restart is replaced at
            # once; no backoff, because a waiting request is worse than the failure mode.
            self._client = aioredis.from_url(
                url_or_client, socket_timeout=timeout, socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
            )
            self._owned = True
        else:
            self._client = url_or_client
            self._owned = False
        self._prefix = key_prefix
        self._margin_ms = max(0, round(expiry_margin * 1000))
        self._scripts = {
            name: (hashlib.sha1(source.encode()).hexdigest(), source)  # noqa: S324 - EVALSHA's name
            for name, source in (
                ("fixed_window", _lua.FIXED_WINDOW),
                ("sliding_log", _lua.SLIDING_LOG),
                ("sliding_window", _lua.SLIDING_WINDOW),
                ("token_bucket", _lua.TOKEN_BUCKET),
                ("gcra", _lua.GCRA),
            )
        }

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    @property
    def prefix(self) -> str:
        return self._prefix

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()

    async def decide(
        self, policy: Policy, key: str, *, cost: int, consume: bool, now: int
    ) -> Outcome:
        # A hash tag keeps a policy's keys in one Redis Cluster slot (sliding_window uses two).
        base = f"{self._prefix}{{{policy.name}:{key}}}"
        flag = "1" if consume else "0"
        try:
            return await _DECIDERS[policy.algorithm](self, policy, base, cost, flag, now)
        except (RedisError, OSError, TimeoutError) as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}: {error}") from error

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> list[bytes]:
        sha, source = self._scripts[name]
        try:
            reply: bytes = await self._client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            # A restarted or flushed Redis has forgotten the script: load it, run it again.
            await self._client.script_load(source)
            reply = await self._client.evalsha(sha, len(keys), *keys, *args)
        return reply.split()


async def _fixed(
    store: RedisStore, policy: Policy, base: str, cost: int, flag: str, now: int
) -> Outcome:
    start, end = policy.bounds(now)
    # The key names its window, so the TTL only collects garbage: keep it a window past the
    # end, so processes whose clocks lag (or an injected clock) still find the count.
    ttl_ms = (2 * end - start - now) // 1000 + 1 + store._margin_ms
    allowed, count = await store._run(
        "fixed_window", [f"{base}:{start}"], [policy.limit, cost, flag, ttl_ms]
    )
    return fixed_window.outcome(allowed == b"1", int(count), limit=policy.limit, now=now, end=end)


async def _log(
    store: RedisStore, policy: Policy, base: str, cost: int, flag: str, now: int
) -> Outcome:
    nonce = secrets.token_hex(8)  # members must be unique though their stamps are equal
    allowed, count, kth, newest = await store._run(
        "sliding_log", [base],
        [now, policy.window_us, policy.limit, cost, flag, nonce, store._margin_ms],
    )
    first, last = int(kth), int(newest)
    return sliding_log.outcome(
        allowed == b"1", int(count), None if first < 0 else first, None if last < 0 else last,
        limit=policy.limit, cost=cost, window=policy.window_us, now=now,
    )


async def _counter(
    store: RedisStore, policy: Policy, base: str, cost: int, flag: str, now: int
) -> Outcome:
    window = policy.window_us
    index, elapsed = divmod(now, window)
    allowed, prev, cur = await store._run(
        "sliding_window", [f"{base}:{index}", f"{base}:{index - 1}"],
        [policy.limit, cost, flag, window, elapsed, store._margin_ms],
    )
    return sliding_window.outcome(
        allowed == b"1", int(prev), int(cur),
        limit=policy.limit, cost=cost, window=window, elapsed=elapsed,
    )


async def _bucket(
    store: RedisStore, policy: Policy, base: str, cost: int, flag: str, now: int
) -> Outcome:
    allowed, level = await store._run(
        "token_bucket", [base],
        [now, policy.capacity, policy.limit, policy.window_us, cost, flag, store._margin_ms],
    )
    return token_bucket.outcome(
        allowed == b"1", int(level), capacity=policy.capacity, limit=policy.limit,
        cost=cost, window=policy.window_us,
    )


async def _gcra(
    store: RedisStore, policy: Policy, base: str, cost: int, flag: str, now: int
) -> Outcome:
    interval = policy.interval_us
    allowed, tat = await store._run(
        "gcra", [base], [now, interval, policy.capacity, cost, flag, store._margin_ms]
    )
    return gcra.outcome(
        allowed == b"1", int(tat), burst=policy.capacity, cost=cost, interval=interval, now=now
    )


_DECIDERS = {
    "fixed_window": _fixed,
    "sliding_log": _log,
    "sliding_window": _counter,
    "token_bucket": _bucket,
    "gcra": _gcra,
}
