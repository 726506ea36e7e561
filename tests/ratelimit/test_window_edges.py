"""Each algorithm's exact behaviour at its window edges, on the memory store and on Redis.

The clock is injected, so edges are tested to the microsecond without sleeping.
"""

from __future__ import annotations

import pytest

from bastion.ratelimit import Policy
from tests.ratelimit.conftest import FakeClock, LimiterFactory

pytestmark = pytest.mark.anyio

MINUTE = 60.0


async def hits(limiter: object, name: str, count: int, key: str = "k") -> list[bool]:
    return [(await limiter.hit(name, key)).allowed for _ in range(count)]  # type: ignore[attr-defined]  # any RateLimiter


async def test_fixed_window_admits_a_double_burst_across_the_boundary(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """A fixed window admits its limit just before the boundary and again just after it."""
    limiter = make_limiter(Policy("p", 3, MINUTE, "fixed_window"))
    clock.now = 119.999999
    assert await hits(limiter, "p", 4) == [True, True, True, False]
    clock.now = 120.0
    assert await hits(limiter, "p", 4) == [True, True, True, False]


async def test_fixed_window_reports_the_reset_at_the_window_end(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """A refusal in a fixed window waits exactly until the window ends."""
    limiter = make_limiter(Policy("p", 2, MINUTE, "fixed_window"))
    clock.now = 100.0
    await hits(limiter, "p", 2)
    decision = await limiter.hit("p", "k")
    assert (decision.allowed, decision.remaining, decision.retry_after, decision.reset_after) == (
        False, 0, 20.0, 20.0,
    )


async def test_sliding_log_prevents_the_boundary_burst(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """The sliding log refuses the second burst until the first has aged out."""
    limiter = make_limiter(Policy("p", 3, MINUTE, "sliding_log"))
    clock.now = 119.999999
    assert await hits(limiter, "p", 3) == [True, True, True]
    clock.now = 120.0
    decision = await limiter.hit("p", "k")
    assert (decision.allowed, decision.retry_after) == (False, 59.999999)
    clock.now = 179.999998
    assert await hits(limiter, "p", 1) == [False]
    clock.now = 179.999999
    assert await hits(limiter, "p", 4) == [True, True, True, False]


async def test_sliding_log_frees_room_entry_by_entry(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """Entries expire one by one, each exactly one window after it was counted."""
    limiter = make_limiter(Policy("p", 2, MINUTE, "sliding_log"))
    clock.now = 10.0
    await hits(limiter, "p", 1)
    clock.now = 30.0
    await hits(limiter, "p", 1)
    decision = await limiter.hit("p", "k")
    assert (decision.allowed, decision.retry_after, decision.reset_after) == (False, 40.0, 60.0)
    clock.now = 70.0
    assert await hits(limiter, "p", 2) == [True, False]


async def test_sliding_window_counter_weights_the_previous_window(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """The previous window counts in proportion to its overlap with the sliding window."""
    limiter = make_limiter(Policy("p", 3, MINUTE, "sliding_window"))
    clock.now = 119.999999
    assert await hits(limiter, "p", 4) == [True, True, True, False]
    clock.now = 120.0
    decision = await limiter.hit("p", "k")
    assert (decision.allowed, decision.retry_after) == (False, 0.000001)
    clock.now = 140.0  # a third into the window: floor(3 * 2/3) = 2 of the previous still count
    assert await hits(limiter, "p", 2) == [True, False]


async def test_sliding_window_counter_waits_for_the_next_window_when_current_is_full(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """With the current window full, the wait runs into the next window until the weight drops."""
    limiter = make_limiter(Policy("p", 4, MINUTE, "sliding_window"))
    clock.now = 150.0
    await hits(limiter, "p", 4)
    decision = await limiter.hit("p", "k")
    # Next window: floor(4 * (60 - e) / 60) <= 3 first holds at e = 1 µs.
    assert (decision.allowed, decision.retry_after, decision.reset_after) == (
        False, 30.000001, 90.0,
    )
    clock.now = 180.000001
    assert await hits(limiter, "p", 2) == [True, False]


async def test_token_bucket_refills_at_the_sustained_rate(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """A drained bucket admits the next request exactly one token interval later."""
    limiter = make_limiter(Policy("p", 3, MINUTE, "token_bucket"))
    clock.now = 100.0
    assert await hits(limiter, "p", 3) == [True, True, True]
    decision = await limiter.hit("p", "k")
    assert (decision.allowed, decision.retry_after, decision.reset_after) == (False, 20.0, 60.0)
    clock.now = 119.999999
    assert await hits(limiter, "p", 1) == [False]
    clock.now = 120.0
    assert await hits(limiter, "p", 2) == [True, False]


async def test_token_bucket_burst_is_its_capacity(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """A bucket with burst 5 over a 3/minute rate admits 5 at once."""
    limiter = make_limiter(Policy("p", 3, MINUTE, "token_bucket", burst=5))
    assert await hits(limiter, "p", 6) == [True] * 5 + [False]


async def test_gcra_spaces_requests_by_the_emission_interval(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """GCRA admits the burst, then one request per emission interval, to the microsecond."""
    limiter = make_limiter(Policy("p", 3, MINUTE, "gcra"))
    clock.now = 100.0
    assert await hits(limiter, "p", 3) == [True, True, True]
    decision = await limiter.hit("p", "k")
    assert (decision.allowed, decision.retry_after, decision.reset_after, decision.remaining) == (
        False, 20.0, 60.0, 0,
    )
    clock.now = 119.999999
    assert await hits(limiter, "p", 1) == [False]
    clock.now = 120.0
    assert await hits(limiter, "p", 2) == [True, False]


async def test_gcra_burst_and_remaining(make_limiter: LimiterFactory, clock: FakeClock) -> None:
    """GCRA's remaining counts down from the burst and recovers by one per interval."""
    limiter = make_limiter(Policy("p", 6, MINUTE, "gcra", burst=2))
    first = await limiter.hit("p", "k")
    second = await limiter.hit("p", "k")
    third = await limiter.hit("p", "k")
    assert [(d.allowed, d.remaining) for d in (first, second, third)] == [
        (True, 1), (True, 0), (False, 0),
    ]
    assert third.retry_after == 10.0


@pytest.mark.parametrize(
    "algorithm", ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]
)
async def test_check_never_consumes(
    make_limiter: LimiterFactory, clock: FakeClock, algorithm: str
) -> None:
    """A peek reports the state without counting, however often it is asked."""
    limiter = make_limiter(Policy("p", 2, MINUTE, algorithm))  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    clock.now = 1_000.5
    for _ in range(5):
        peek = await limiter.check("p", "k")
        assert (peek.allowed, peek.remaining) == (True, 2)
    assert await hits(limiter, "p", 3) == [True, True, False]
    peek = await limiter.check("p", "k")
    assert (peek.allowed, peek.remaining) == (False, 0)


@pytest.mark.parametrize(
    "algorithm", ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]
)
async def test_keys_and_policies_are_counted_apart(
    make_limiter: LimiterFactory, clock: FakeClock, algorithm: str
) -> None:
    """Exhausting one key leaves other keys and other policies untouched."""
    limiter = make_limiter(
        Policy("p", 1, MINUTE, algorithm),  # type: ignore[arg-type]  # algorithm and mode names are plain str here
        Policy("q", 1, MINUTE, algorithm),  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    )
    assert await hits(limiter, "p", 2, key="a") == [True, False]
    assert await hits(limiter, "p", 1, key="b") == [True]
    assert await hits(limiter, "q", 1, key="a") == [True]


@pytest.mark.parametrize(
    "algorithm", ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]
)
async def test_cost_counts_several_units(
    make_limiter: LimiterFactory, clock: FakeClock, algorithm: str
) -> None:
    """A request of cost 3 spends three units, and is refused when fewer remain."""
    limiter = make_limiter(Policy("p", 5, MINUTE, algorithm))  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    clock.now = 1_200.0
    assert (await limiter.hit("p", "k", cost=3)).remaining == 2
    assert (await limiter.hit("p", "k", cost=3)).allowed is False
    assert (await limiter.hit("p", "k", cost=2)).allowed is True


async def test_calendar_month_quota_resets_on_the_first(
    make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    """A monthly quota resets at 00:00 UTC on the 1st, and reports when."""
    limiter = make_limiter(
        Policy("monthly", 2, 30 * 86_400.0, "fixed_window", kind="quota", calendar="month")
    )
    clock.now = 1_738_367_999.0  # 2025-01-31T23:59:59Z
    assert await hits(limiter, "monthly", 2) == [True, True]
    refused = await limiter.hit("monthly", "k")
    assert (refused.allowed, refused.kind, refused.retry_after) == (False, "quota", 1.0)
    clock.now = 1_738_368_000.0  # 2025-02-01T00:00:00Z
    assert await hits(limiter, "monthly", 3) == [True, True, False]
    assert (await limiter.check("monthly", "k")).reset_after == 28 * 86_400.0
