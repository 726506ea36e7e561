"""Fixed window counter: at most `limit` units per window [start, end).

Cheap and exact per window, but a caller can spend a whole window's allowance just before the
boundary and another just after it (the boundary burst the sliding algorithms prevent). Used for
quotas, where windows are calendar periods and the reset time is what the caller needs to know.
"""

from __future__ import annotations

from bastion.ratelimit.algorithms._outcome import Outcome


def outcome(allowed: bool, count: int, *, limit: int, now: int, end: int) -> Outcome:
    """Report a decision from the window's count after it (what the Redis script returns)."""
    left = end - now
    return (
        allowed,
        limit - count if count < limit else 0,
        left if count > 0 else 0,
        0 if allowed else left,
    )


def step(
    count: int, limit: int, cost: int, consume: bool, now: int, end: int
) -> tuple[Outcome, int]:
    """Decide one request against the current window's `count`; return the outcome and new count."""
    allowed = count + cost <= limit
    if allowed and consume:
        count += cost
    left = end - now  # `outcome` inlined: this runs on every request
    return (
        allowed, limit - count if count < limit else 0, left if count else 0, 0 if allowed else left
    ), count
