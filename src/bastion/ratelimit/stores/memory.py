"""Counters in this process's memory: the embedded default, exact within one event loop.

Every decision runs without awaiting, so it is atomic under asyncio. Separate processes each
count on their own (use `RedisStore` to share a limit between processes).
"""

from __future__ import annotations

from typing import Any, Final

from bastion.ratelimit.algorithms import (
    Outcome,
    fixed_window,
    gcra,
    sliding_log,
    sliding_window,
    token_bucket,
)
from bastion.ratelimit.policy import Policy

_SWEEP_EVERY: Final = 4096


class MemoryStore:
    """In-process store; expired keys are swept periodically so memory stays bounded by use."""

    def __init__(self) -> None:
        self._state: dict[tuple[str, str], tuple[int, Any]] = {}  # key -> (expires_at, state)
        self._countdown = _SWEEP_EVERY  # decisions until the next sweep of expired keys

    def __len__(self) -> int:
        return len(self._state)

    async def aclose(self) -> None:
        self._state.clear()

    async def decide(
        self, policy: Policy, key: str, *, cost: int, consume: bool, now: int
    ) -> Outcome:
        return self.decide_now(policy, key, cost, consume, now)

    def decide_now(self, policy: Policy, key: str, cost: int, consume: bool, now: int) -> Outcome:
        """`decide` without a coroutine: the limiter's fast path for this store."""
        self._countdown -= 1
        if not self._countdown:
            self._countdown = _SWEEP_EVERY
            self._sweep(now)
        slot = (policy.name, key)
        entry = self._state.get(slot)
        state = entry[1] if entry is not None and entry[0] > now else None
        outcome, new_state = _STEPS[policy.algorithm](policy, state, cost, consume, now)
        if consume and outcome[0]:
            reset_after = outcome[2]
            self._state[slot] = (now + (reset_after if reset_after > 0 else 1), new_state)
        return outcome

    def _sweep(self, now: int) -> None:
        for slot in [s for s, (expires_at, _) in self._state.items() if expires_at <= now]:
            del self._state[slot]


def _fixed(policy: Policy, state: Any, cost: int, consume: bool, now: int) -> tuple[Outcome, Any]:
    if policy.calendar is None:  # `Policy.bounds` inlined: this runs on every request
        start = now - now % policy.window_us
        end = start + policy.window_us
    else:
        start, end = policy.bounds(now)
    count = state[1] if state is not None and state[0] == start else 0
    outcome, count = fixed_window.step(count, policy.limit, cost, consume, now, end)
    return outcome, (start, count)


def _log(policy: Policy, state: Any, cost: int, consume: bool, now: int) -> tuple[Outcome, Any]:
    log: list[int] = [] if state is None else state
    outcome = sliding_log.step(log, policy.limit, cost, consume, policy.window_us, now)
    return outcome, log


def _counter(
    policy: Policy, state: Any, cost: int, consume: bool, now: int
) -> tuple[Outcome, Any]:
    window = policy.window_us
    index, elapsed = divmod(now, window)
    prev = cur = 0
    if state is not None and state[0] == index:
        prev, cur = state[1], state[2]
    elif state is not None and state[0] == index - 1:
        prev = state[2]
    outcome, cur = sliding_window.step(prev, cur, policy.limit, cost, consume, window, elapsed)
    return outcome, (index, prev, cur)


def _bucket(policy: Policy, state: Any, cost: int, consume: bool, now: int) -> tuple[Outcome, Any]:
    level, stamp = (None, now) if state is None else state
    outcome, level = token_bucket.step(
        level, stamp, policy.capacity, policy.limit, cost, consume, policy.window_us, now
    )
    return outcome, (level, max(stamp, now))


def _gcra(policy: Policy, state: Any, cost: int, consume: bool, now: int) -> tuple[Outcome, Any]:
    outcome, tat = gcra.step(
        0 if state is None else state, policy.capacity, cost, consume, policy.interval_us, now
    )
    return outcome, tat


_STEPS: Final = {
    "fixed_window": _fixed,
    "sliding_log": _log,
    "sliding_window": _counter,
    "token_bucket": _bucket,
    "gcra": _gcra,
}
