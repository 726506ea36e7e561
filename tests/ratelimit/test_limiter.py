"""The limiter over a store: atomic under concurrency, failure modes, metrics, client auth."""

from __future__ import annotations

import asyncio

import pytest
import structlog
import structlog.testing

from bastion.ratelimit import (
    MemoryStore,
    Metrics,
    Policy,
    RateLimiter,
    RedisStore,
    UnknownPolicy,
    parse_policies,
    render_prometheus,
    strictest,
)
from tests._services import need_redis
from tests.ratelimit._redis_server import free_port
from tests.ratelimit.conftest import FakeClock

pytestmark = pytest.mark.anyio

ALGORITHMS = ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_two_redis_clients_never_admit_more_than_the_limit(
    prefix: str, clock: FakeClock, algorithm: str
) -> None:
    """Two stores with their own connection pools, hitting at once, admit exactly the limit."""
    url = need_redis()
    policy = Policy("p", 25, 3600.0, algorithm)  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    # A generous timeout: on a loaded machine a slow connect would fail open and blur the count.
    stores = [RedisStore(url, key_prefix=prefix, timeout=10) for _ in range(2)]
    limiters = [RateLimiter(s, [policy], clock=clock, metrics=Metrics()) for s in stores]
    decisions = await asyncio.gather(*(limiters[i % 2].hit("p", "k") for i in range(120)))
    for store in stores:
        await store.aclose()
    assert (sum(d.allowed for d in decisions), sum(d.degraded for d in decisions)) == (25, 0)


@pytest.mark.parametrize(("mode", "allowed"), [
    pytest.param("open", True, id="fail-open"),
    pytest.param("closed", False, id="fail-closed"),
])
async def test_unreachable_redis_answers_with_the_failure_mode(mode: str, allowed: bool) -> None:
    """With Redis unreachable, the policy's failure mode answers, logged and counted, no raise."""
    metrics = Metrics()
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    limiter = RateLimiter(
        store, [Policy("p", 5, 60.0, on_store_error=mode)], metrics=metrics  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    )
    peek = await limiter.check("p", "k")
    hit = await limiter.hit("p", "k")
    await store.aclose()
    assert (peek.allowed, peek.degraded, hit.allowed, hit.degraded) == (allowed, True, allowed, True)
    assert metrics.value("bastion_ratelimit_store_errors_total", policy="p", mode=mode) == 2


async def test_failed_client_authentication_flood_is_refused_before_guessing(
    clock: FakeClock,
) -> None:
    """Peek before checking a secret, hit on failure: the 21st wrong secret is never checked."""
    limiter = RateLimiter(MemoryStore(), parse_policies({}), clock=clock, metrics=Metrics())
    pairs = [("client_auth_failures_per_address", "192.0.2.7")]
    checked = 0
    for _ in range(30):
        if not strictest(await limiter.check_all(pairs)).allowed:
            continue
        checked += 1  # the server would verify the secret here; it is wrong
        await limiter.hit_all(pairs)
    refusal = strictest(await limiter.check_all(pairs))
    assert (checked, refusal.allowed, refusal.retry_after) == (20, False, 3.0)


async def test_successful_traffic_is_not_counted_by_default(clock: FakeClock) -> None:
    """Peeks alone (every successful authentication) never exhaust the failure policies."""
    limiter = RateLimiter(MemoryStore(), parse_policies({}), clock=clock, metrics=Metrics())
    decisions = [await limiter.check("client_auth_failures_per_address", "192.0.2.7") for _ in range(100)]
    assert all(d.allowed for d in decisions)


async def test_unknown_policy_and_bad_cost_are_programming_errors() -> None:
    """Asking for a policy that does not exist, or a cost below 1, raises at once."""
    limiter = RateLimiter(MemoryStore(), [Policy("p", 1, 1.0)], metrics=Metrics())
    with pytest.raises(UnknownPolicy):
        await limiter.hit("missing", "k")
    with pytest.raises(ValueError, match="cost must be at least 1, got 0"):
        await limiter.hit("p", "k", cost=0)


def test_duplicate_policy_names_are_refused() -> None:
    """Two policies with one name would share counters; the limiter refuses them."""
    with pytest.raises(ValueError, match="two rate-limit policies are named 'p'"):
        RateLimiter(MemoryStore(), [Policy("p", 1, 1.0), Policy("p", 2, 1.0)])


async def test_long_keys_are_bounded(clock: FakeClock) -> None:
    """A caller-chosen key of any length is stored under a fixed-size digest."""
    store = MemoryStore()
    limiter = RateLimiter(store, [Policy("p", 1, 60.0)], clock=clock, metrics=Metrics())
    assert (await limiter.hit("p", "x" * 10_000)).allowed
    assert not (await limiter.hit("p", "x" * 10_000)).allowed
    assert [len(key) for key in store._tables["p"]] == [len("sha256:") + 64]


async def test_memory_store_sweeps_expired_keys(clock: FakeClock) -> None:
    """Keys whose state has fully reset are dropped, so memory follows current use."""
    store = MemoryStore()
    limiter = RateLimiter(store, [Policy("p", 5, 1.0, "gcra")], clock=clock, metrics=Metrics())
    for i in range(4095):
        await limiter.hit("p", f"k{i}")
    clock.now += 10
    await limiter.hit("p", "last")
    assert len(store) == 1


async def test_metrics_count_allowed_and_limited_per_policy(clock: FakeClock) -> None:
    """Decisions are counted per policy, operation and outcome in the Prometheus text format."""
    metrics = Metrics()
    limiter = RateLimiter(MemoryStore(), [Policy("p", 1, 60.0)], clock=clock, metrics=metrics)
    await limiter.hit("p", "k")
    await limiter.hit("p", "k")
    await limiter.check("p", "k")
    assert render_prometheus(metrics) == (
        "# HELP bastion_ratelimit_decisions_total Rate-limit decisions by policy, operation"
        " (check or hit) and outcome.\n"
        "# TYPE bastion_ratelimit_decisions_total counter\n"
        'bastion_ratelimit_decisions_total{op="check",outcome="limited",policy="p"} 1.0\n'
        'bastion_ratelimit_decisions_total{op="hit",outcome="allowed",policy="p"} 1.0\n'
        'bastion_ratelimit_decisions_total{op="hit",outcome="limited",policy="p"} 1.0\n'
    )


def test_metric_labels_are_escaped() -> None:
    """Label values with quotes, backslashes or newlines cannot break the exposition format."""
    metrics = Metrics()
    metrics.inc("x_total", policy='a"b\\c\nd')
    assert metrics.render().splitlines()[-1] == 'x_total{policy="a\\"b\\\\c\\nd"} 1.0'


async def test_store_failures_are_logged_once_per_interval() -> None:
    """An outage logs its first failure, not one line per request."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    limiter = RateLimiter(store, [Policy("p", 5, 60.0)], metrics=Metrics())
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            await limiter.hit("p", "k")
    await store.aclose()
    assert [(e["event"], e["policy"], e["mode"], e["failures"]) for e in logs] == [
        ("ratelimit_store_unavailable", "p", "open", 1),
    ]
