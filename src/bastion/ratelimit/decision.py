"""What the limiter answers: one `Decision` per policy, and the strictest of several."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from bastion.ratelimit.policy import Kind


class Decision(NamedTuple):
    """The answer of one policy for one key, in seconds (an immutable tuple: cheap to make).

    Attributes:
        allowed: the request is (or, for a peek, would be) admitted.
        policy: the policy's name.
        kind: "quota" or "burst", so a 429 can say which was exhausted.
        limit: units per window (the `q` of `RateLimit-Policy`).
        window: the policy's window in seconds (the `w`).
        remaining: units still admissible now (the `r` of `RateLimit`).
        reset_after: seconds until the full allowance is back (the `t`).
        retry_after: seconds until this request would be admitted (0 when allowed).
        degraded: the store was unreachable and the policy's failure mode answered.
    """

    allowed: bool
    policy: str
    kind: Kind
    limit: int
    window: float
    remaining: int
    reset_after: float
    retry_after: float
    degraded: bool = False


def strictest(decisions: Iterable[Decision]) -> Decision:
    """The decision that binds: a refusal with the longest wait, else the least remaining.

    Raises:
        ValueError: when `decisions` is empty.
    """
    ordered = sorted(
        decisions,
        key=lambda d: (d.allowed, -d.retry_after, d.remaining, -d.reset_after),
    )
    if not ordered:
        raise ValueError("strictest() needs at least one decision")
    return ordered[0]
