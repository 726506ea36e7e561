"""Property: a refusal's retry_after is exact, for every algorithm, after any history.

Waiting exactly retry_after admits the same request; one microsecond less does not. Driven
through the memory store's synchronous core with hypothesis-generated histories.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.ratelimit import MemoryStore, Policy

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
    policy = Policy("p", limit, window_ms / 1000, algorithm)  # type: ignore[arg-type]
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
