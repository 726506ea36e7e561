"""Sliding window counter: the previous window's count, weighted by how much of it still
overlaps the sliding window, plus the current window's count.

O(1) memory per key and no boundary burst of 2x; the price is an approximation that assumes
the previous window's requests were spread evenly (Cloudflare's and `limits`' estimate).
The weighting is done in IEEE doubles in the same order as the Redis script, so both agree.
"""

from __future__ import annotations

import math

from bastion.ratelimit.algorithms._outcome import Outcome


def weighted(prev: int, cur: int, elapsed: int, window: int) -> int:
    """Estimated units in the sliding window `elapsed` microseconds into the current window."""
    if not prev:
        return cur
    return math.floor(float(prev) * float(window - elapsed) / float(window)) + cur


def _first_fit(prev: int, cur: int, start: int, window: int, room: int) -> int | None:
    """Smallest elapsed in [start, window) where the estimate is at most `room`, else None."""
    if weighted(prev, cur, window - 1, window) > room:
        return None
    low, high = start, window - 1  # the estimate only falls as elapsed grows: bisect
    while low < high:
        middle = (low + high) // 2
        if weighted(prev, cur, middle, window) <= room:
            high = middle
        else:
            low = middle + 1
    return low


def outcome(
    allowed: bool, prev: int, cur: int, *,
    limit: int, cost: int, window: int, elapsed: int, estimate: int | None = None,
) -> Outcome:
    """Report a decision from the two windows' counts after it (what the Redis script returns).

    `estimate` is `weighted(prev, cur, elapsed, window)` when the caller already has it.
    """
    if estimate is None:
        estimate = weighted(prev, cur, elapsed, window)
    retry_after = 0
    if not allowed:
        here = _first_fit(prev, cur, elapsed, window, limit - cost)
        if here is not None:
            retry_after = here - elapsed
        else:
            nxt = _first_fit(cur, 0, 0, window, limit - cost)
            retry_after = window - elapsed + (window if nxt is None else nxt)
    if cur > 0:
        reset_after = 2 * window - elapsed
    elif prev > 0:
        reset_after = window - elapsed
    else:
        reset_after = 0
    return (
        allowed, limit - estimate if estimate < limit else 0, reset_after, retry_after
    )


def step(
    prev: int, cur: int, limit: int, cost: int, consume: bool, window: int, elapsed: int
) -> tuple[Outcome, int]:
    """Decide one request; return the outcome and the current window's new count."""
    estimate = weighted(prev, cur, elapsed, window)
    if estimate + cost > limit:
        return outcome(
            False, prev, cur, limit=limit, cost=cost, window=window, elapsed=elapsed,
            estimate=estimate,
        ), cur
    if consume:
        cur += cost
        estimate += cost
    # `outcome` inlined for the admitted case, the common one.
    reset_after = 2 * window - elapsed if cur else (window - elapsed if prev else 0)
    return (True, limit - estimate if estimate < limit else 0, reset_after, 0), cur
