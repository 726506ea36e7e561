"""The contract between the limiter and a store."""

from __future__ import annotations

from typing import Protocol

from bastion.ratelimit.algorithms import Outcome
from bastion.ratelimit.policy import Policy


class StoreUnavailable(Exception):
    """The store could not answer; the limiter applies the policy's failure mode."""


class Store(Protocol):
    """Decides atomically: two callers sharing a store never admit more than the limit."""

    async def decide(
        self, policy: Policy, key: str, *, cost: int, consume: bool, now: int
    ) -> Outcome:
        """Decide one request of `cost` for `key` at `now` (microseconds).

        With `consume` false this is a peek: nothing is counted.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
