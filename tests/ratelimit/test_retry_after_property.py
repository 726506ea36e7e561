"""Properties over hypothesis-generated histories, for every algorithm.

A refusal's retry_after is exact: waiting exactly that long admits the same request, one
microsecond less does not. And the Redis scripts decide exactly as the sans-I/O core does.
"""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.ratelimit import MemoryStore, Policy, RedisStore
from bastion.ratelimit.algorithms import Outcome
from tests._services import need_redis
from tests.ratelimit._reference import INLINED, reference_decider

ALGORITHMS = ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]

histories = st.lists(
    st.tuples(st.integers(0, 3_000_000), st.integers(1, 3)),  # (µs since previous, cost)
    min_size=1, max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    algorithm=st.sampled_from(ALGORITHMS),
    limit=st.integers(1, 6),
    window_ms=st.integers(1, 5_000),
    history=histories,
    cost=st.integers(1, 3),
)
def test_retry_after_is_the_exact_wait(
    algorithm: str, limit: int, window_ms: int, history: list[tuple[int, int]], cost: int
) -> None:
    """After any history, a refused request is admitted at now + retry_after and not before."""
    policy = Policy("p", limit, window_ms / 1000, algorithm)  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    store = MemoryStore()
    now = 10_000_000_000
    for gap, spent in history:
        now += gap
        store.decide_now(policy, "k", spent, True, now)
    allowed, _, _, retry_after = store.decide_now(policy, "k", cost, False, now)
    if allowed or cost > limit:
        return
    assert retry_after > 0
    # Earlier moment first: a peek may drop expired state, as time only moves forward.
    assert store.decide_now(policy, "k", cost, False, now + retry_after - 1)[0] is False
    assert store.decide_now(policy, "k", cost, False, now + retry_after)[0] is True


@settings(max_examples=60, deadline=None)
@given(
    algorithm=st.sampled_from(ALGORITHMS),
    limit=st.integers(1, 6),
    window_ms=st.integers(1, 5_000),
    history=histories,
)
def test_redis_scripts_decide_exactly_as_the_sans_io_core(
    algorithm: str, limit: int, window_ms: int, history: list[tuple[int, int]]
) -> None:
    """Any history gives the same outcomes, to the microsecond, on Redis and in memory."""
    url = need_redis()
    policy = Policy("p", limit, window_ms / 1000, algorithm)  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    memory = MemoryStore()

    async def replay() -> list[Outcome]:
        # Redis expires keys by its own clock; the margin covers the test's frozen one.
        redis_store = RedisStore(url, key_prefix=f"bastion-test:{uuid.uuid4().hex}:", timeout=10,
                                 expiry_margin=600)
        outcomes = []
        now = 10_000_000_000
        for gap, cost in history:
            now += gap
            outcomes.append(await redis_store.decide(policy, "k", cost=cost, consume=True, now=now))
        outcomes.append(await redis_store.decide(policy, "k", cost=1, consume=False, now=now))
        await redis_store.client.delete(*[k async for k in redis_store.client.scan_iter(
            match=f"{redis_store.prefix}*")] or ["-"])
        await redis_store.aclose()
        return outcomes

    expected: list[Outcome] = []
    now = 10_000_000_000
    for gap, cost in history:
        now += gap
        expected.append(memory.decide_now(policy, "k", cost, True, now))
    expected.append(memory.decide_now(policy, "k", 1, False, now))
    assert asyncio.run(replay()) == expected


@settings(max_examples=300, deadline=None)
@given(
    algorithm=st.sampled_from(sorted(INLINED)),
    limit=st.integers(1, 6),
    window_ms=st.integers(1, 5_000),
    history=st.lists(
        st.tuples(st.integers(0, 3_000_000), st.integers(1, 3), st.booleans(), st.sampled_from("ab")),
        min_size=1, max_size=40,
    ),
)
def test_memory_store_decides_exactly_as_the_algorithm_modules(
    algorithm: str, limit: int, window_ms: int, history: list[tuple[int, int, bool, str]]
) -> None:
    """The memory store's inlined admitted paths give what the sans-I/O steps give, peeks and
    refusals included, key by key."""
    policy = Policy("p", limit, window_ms / 1000, algorithm)  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    store, reference = MemoryStore(), reference_decider(policy)
    now = 10_000_000_000
    for gap, cost, consume, key in history:
        now += gap
        assert store.decide_now(policy, key, cost, consume, now) == reference(key, cost, consume, now)
