"""GCRA, the leaky bucket as a meter (ITU-T I.371 virtual scheduling).

State is one number, the theoretical arrival time (TAT). With emission interval T = window /
limit and a burst of `burst` requests, a request of cost c is admitted when
max(TAT, now) + c*T - now <= burst*T, and then TAT becomes max(TAT, now) + c*T. Equivalent to
a token bucket, but one stored integer and an exact retry_after.
"""

from __future__ import annotations

from bastion.ratelimit.algorithms._outcome import Outcome


def emission_interval(limit: int, window: int) -> int:
    """T in whole microseconds (at least 1), the spacing of a steady stream."""
    return max(1, window // limit)


def outcome(allowed: bool, tat: int, *, burst: int, cost: int, interval: int, now: int) -> Outcome:
    """Report a decision from the TAT after it, never earlier than `now` (what Redis returns)."""
    horizon = burst * interval
    used = tat - now
    room = horizon - used
    return (
        allowed,
        room // interval if room > 0 else 0,
        used,
        0 if allowed else tat + cost * interval - horizon - now,
    )


def step(
    tat: int, burst: int, cost: int, consume: bool, interval: int, now: int
) -> tuple[Outcome, int]:
    """Decide one request against the stored `tat` (0 for a new key); return outcome and TAT."""
    if tat < now:
        tat = now
    candidate = tat + cost * interval
    horizon = burst * interval
    if candidate - now > horizon:
        return outcome(False, tat, burst=burst, cost=cost, interval=interval, now=now), tat
    if consume:
        tat = candidate
    room = horizon - tat + now  # `outcome` inlined for the admitted case, the common one
    return (True, room // interval if room > 0 else 0, tat - now, 0), tat
