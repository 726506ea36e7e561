"""Token bucket: a bucket of `capacity` tokens refilled at `limit` per `window`.

Allows bursts up to the capacity and a sustained rate of limit/window. The level is kept as an
integer in units of 1/window of a token (a token is `window` units, and each microsecond adds
`limit` units), so refilling is exact and independent of how often it is computed: floats would
round differently along different paths and make retry_after wrong by a microsecond. A clock
running behind the stored stamp (another process's clock) refills nothing.
"""

from __future__ import annotations

from bastion.ratelimit.algorithms._outcome import Outcome


def refill(level: int, stamp: int, capacity: int, limit: int, window: int, now: int) -> int:
    """The level (in 1/window token units) at `now`, given `level` at `stamp`."""
    if now <= stamp:
        return level
    full = capacity * window
    # Past the time to fill nothing changes; the cap keeps the product exact in Lua's doubles.
    elapsed = min(now - stamp, full // limit + 1)
    return min(full, level + elapsed * limit)


def outcome(allowed: bool, level: int, *, capacity: int, limit: int, cost: int, window: int) -> Outcome:
    """Report a decision from the level after it (what the Redis script returns)."""
    missing = capacity * window - level
    short = cost * window - level
    return (
        allowed,
        level // window,
        -(-missing // limit) if missing > 0 else 0,
        0 if allowed or short <= 0 else -(-short // limit),
    )


def step(
    level: int | None, stamp: int,
    capacity: int, limit: int, cost: int, consume: bool, window: int, now: int,
) -> tuple[Outcome, int]:
    """Decide one request; `level` None means a full bucket. Return the outcome and level."""
    current = capacity * window if level is None else refill(
        level, stamp, capacity, limit, window, now
    )
    allowed = current >= cost * window
    if allowed and consume:
        current -= cost * window
    return outcome(
        allowed, current, capacity=capacity, limit=limit, cost=cost, window=window
    ), current
