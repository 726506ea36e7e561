"""Reference deciders built only from the sans-I/O algorithm modules, with plain per-key state.

`MemoryStore` inlines the admitted path of three algorithms for speed (see its module
docstring); these are what it would be without that, so a test can hold the two equal and the
rate-limit bench can say what the inlining is worth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.ratelimit import Policy
from bastion.ratelimit.algorithms import Outcome, fixed_window, gcra, token_bucket

ReferenceDecider = Callable[[str, int, bool, int], Outcome]


def _fixed(policy: Policy, state: dict[str, Any]) -> ReferenceDecider:
    def decide(key: str, cost: int, consume: bool, now: int) -> Outcome:
        end = policy.bounds(now)[1]
        known = state.get(key)
        count = known[1] if known is not None and known[0] == end else 0
        outcome, new = fixed_window.step(count, policy.limit, cost, consume, now, end)
        if new != count:
            state[key] = (end, new)
        return outcome

    return decide


def _bucket(policy: Policy, state: dict[str, Any]) -> ReferenceDecider:
    def decide(key: str, cost: int, consume: bool, now: int) -> Outcome:
        level, stamp = state.get(key, (None, now))
        outcome, new = token_bucket.step(
            level, stamp, policy.capacity, policy.limit, cost, consume, policy.window_us, now
        )
        if consume and outcome[0]:
            state[key] = (new, max(stamp, now))
        return outcome

    return decide


def _gcra(policy: Policy, state: dict[str, Any]) -> ReferenceDecider:
    def decide(key: str, cost: int, consume: bool, now: int) -> Outcome:
        outcome, tat = gcra.step(state.get(key, 0), policy.capacity, cost, consume, policy.interval_us, now)
        if consume and outcome[0]:
            state[key] = tat
        return outcome

    return decide


INLINED = {"fixed_window": _fixed, "token_bucket": _bucket, "gcra": _gcra}


def reference_decider(policy: Policy) -> ReferenceDecider:
    """A decider for `policy` (one of the INLINED algorithms) with its own empty state."""
    return INLINED[policy.algorithm](policy, {})
