"""Token bucket: a bucket of `capacity` tokens refilled at `limit` per `window`.

Allows bursts up to the capacity and a sustained rate of limit/window. State is the token count
(a double, refilled in the same operation order as the Redis script) and the time of the last
refill. A clock running behind the stored stamp (another process's clock) refills nothing.
"""

from __future__ import annotations

import math

from bastion.ratelimit.algorithms._outcome import Outcome


def refill(tokens: float, stamp: int, *, capacity: int, limit: int, window: int, now: int) -> float:
    """Tokens in the bucket at `now`, given `tokens` at `stamp`."""
    if now <= stamp:
        return tokens
    return min(float(capacity), tokens + float(now - stamp) * float(limit) / float(window))


def outcome(
    allowed: bool, tokens: float, *, capacity: int, limit: int, cost: int, window: int
) -> Outcome:
    """Report a decision from the tokens left after it (what the Redis script returns)."""
    per_token = float(window) / float(limit)
    return (
        allowed,
        max(0, math.floor(tokens)),
        max(0, math.ceil((capacity - tokens) * per_token)),
        0 if allowed else max(0, math.ceil((cost - tokens) * per_token)),
    )


def step(
    tokens: float | None, stamp: int,
    capacity: int, limit: int, cost: int, consume: bool, window: int, now: int,
) -> tuple[Outcome, float]:
    """Decide one request; `tokens` None means a full bucket. Return the outcome and tokens."""
    if tokens is None:
        level = float(capacity)
    elif now <= stamp:
        level = tokens
    else:  # `refill` inlined: this runs on every request
        level = tokens + float(now - stamp) * float(limit) / float(window)
        if level > capacity:
            level = float(capacity)
    if level < cost:
        return outcome(
            False, level, capacity=capacity, limit=limit, cost=cost, window=window
        ), level
    if consume:
        level -= cost
    # `outcome` inlined for the admitted case, the common one.
    missing = math.ceil((capacity - level) * (float(window) / float(limit)))  # as in `outcome`
    return (True, math.floor(level), missing if missing > 0 else 0, 0), level
