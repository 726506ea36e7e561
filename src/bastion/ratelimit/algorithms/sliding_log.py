"""Sliding window log: at most `limit` units in any window of length `window`.

Exact, with no boundary burst: an entry stamped t counts during [t, t + window). Memory is
O(limit) per key, the price of exactness (the weighted counter is the O(1) approximation).
"""

from __future__ import annotations

from bisect import bisect_right

from bastion.ratelimit.algorithms._outcome import Outcome


def outcome(
    allowed: bool, count: int, kth: int | None, newest: int | None, *,
    limit: int, cost: int, window: int, now: int,
) -> Outcome:
    """Report a decision from what the log holds after it.

    Args:
        count: entries in the window after the decision.
        kth: stamp of the oldest entry whose expiry makes room for `cost` (None if none).
        newest: stamp of the newest entry (None if the log is empty).
    """
    if allowed:
        retry_after = 0
    elif kth is None:
        retry_after = window  # cost exceeds the limit itself: it never fits
    else:
        retry_after = kth + window - now
    return (
        allowed,
        max(0, limit - count),
        0 if newest is None else newest + window - now,
        retry_after,
    )


def step(
    log: list[int], limit: int, cost: int, consume: bool, window: int, now: int
) -> Outcome:
    """Decide one request against `log` (sorted stamps, mutated in place) and report it."""
    del log[: bisect_right(log, now - window)]
    allowed = len(log) + cost <= limit
    if allowed and consume:
        log.extend([now] * cost)
    count = len(log)
    need = count + cost - limit
    kth = log[need - 1] if not allowed and 0 < need <= count else None
    return outcome(
        allowed, count, kth, log[-1] if log else None,
        limit=limit, cost=cost, window=window, now=now,
    )
