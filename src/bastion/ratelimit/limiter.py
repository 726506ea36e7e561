"""The limiter: named policies over a store, answering peeks and hits with `Decision`s.

A peek (`check`) counts nothing: the authorization server peeks at the failure counters before
it verifies a client secret, and hits only when verification fails, so a flood of wrong
secrets is refused before any guess is tried. A store failure never raises: the policy's
failure mode answers, and the failure is logged and counted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable

import structlog

from bastion.ratelimit.algorithms import Outcome
from bastion.ratelimit.decision import Decision
from bastion.ratelimit.metrics import DEFAULT_METRICS, Metrics
from bastion.ratelimit.policy import Policy
from bastion.ratelimit.stores import Store, StoreUnavailable

Clock = Callable[[], float]
_log = structlog.get_logger("bastion.ratelimit")
_MICRO = 1_000_000
_LONG_KEY = 128


class UnknownPolicy(KeyError):
    """No policy has this name."""


class RateLimiter:
    """Decides requests against named policies.

    Args:
        store: `MemoryStore()` or `RedisStore(...)`.
        policies: the policies, e.g. from `parse_policies`; names must be unique.
        clock: seconds since the epoch (injected in tests, so window edges are exact).
        metrics: where allowed, limited and store-error counts go.

    Raises:
        ValueError: two policies share a name.
    """

    def __init__(
        self,
        store: Store,
        policies: Iterable[Policy],
        *,
        clock: Clock = time.time,
        metrics: Metrics = DEFAULT_METRICS,
    ) -> None:
        self.store = store
        self.policies: dict[str, Policy] = {}
        for policy in policies:
            if policy.name in self.policies:
                raise ValueError(f"two rate-limit policies are named {policy.name!r}")
            self.policies[policy.name] = policy
        self.clock = clock
        self.metrics = metrics

    def policy(self, name: str) -> Policy:
        try:
            return self.policies[name]
        except KeyError:
            raise UnknownPolicy(name) from None

    async def check(self, name: str, key: str, cost: int = 1) -> Decision:
        """Peek: would a request of `cost` be admitted now? Nothing is counted."""
        return await self._decide(name, key, cost, consume=False)

    async def hit(self, name: str, key: str, cost: int = 1) -> Decision:
        """Count a request of `cost` if it is admitted, and return the decision."""
        return await self._decide(name, key, cost, consume=True)

    async def check_all(self, pairs: Iterable[tuple[str, str]]) -> list[Decision]:
        """Peek at several (policy, key) pairs; `strictest()` of the result binds."""
        return [await self.check(name, key) for name, key in pairs]

    async def hit_all(self, pairs: Iterable[tuple[str, str]]) -> list[Decision]:
        """Hit several (policy, key) pairs, each counted independently."""
        return [await self.hit(name, key) for name, key in pairs]

    async def aclose(self) -> None:
        await self.store.aclose()

    async def _decide(self, name: str, key: str, cost: int, *, consume: bool) -> Decision:
        policy = self.policy(name)
        if cost < 1:
            raise ValueError(f"cost must be at least 1, got {cost}")
        now = round(self.clock() * _MICRO)
        operation = "hit" if consume else "check"
        try:
            outcome = await self.store.decide(
                policy, _bounded(key), cost=cost, consume=consume, now=now
            )
        except StoreUnavailable as error:
            return self._degraded(policy, operation, error)
        decision = _decision(policy, outcome)
        self.metrics.inc(
            "bastion_ratelimit_decisions_total", policy=policy.name, op=operation,
            outcome="allowed" if decision.allowed else "limited",
        )
        return decision

    def _degraded(self, policy: Policy, operation: str, error: StoreUnavailable) -> Decision:
        allowed = policy.on_store_error == "open"
        _log.warning(
            "ratelimit_store_unavailable", policy=policy.name, mode=policy.on_store_error,
            error=str(error),
        )
        self.metrics.inc(
            "bastion_ratelimit_store_errors_total", policy=policy.name,
            mode=policy.on_store_error,
        )
        self.metrics.inc(
            "bastion_ratelimit_decisions_total", policy=policy.name, op=operation,
            outcome="allowed" if allowed else "limited",
        )
        retry = 0.0 if allowed else 1.0  # fail-closed: ask to come back soon, not a window later
        return Decision(
            allowed=allowed, policy=policy.name, kind=policy.kind, limit=policy.limit,
            window=policy.window, remaining=policy.limit if allowed else 0,
            reset_after=retry, retry_after=retry, degraded=True,
        )


def _bounded(key: str) -> str:
    """Keys come from callers (client_id, addresses); bound their size in the store."""
    if len(key) <= _LONG_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _decision(policy: Policy, outcome: Outcome) -> Decision:
    return Decision(
        allowed=outcome.allowed,
        policy=policy.name,
        kind=policy.kind,
        limit=policy.limit,
        window=policy.window,
        remaining=outcome.remaining,
        reset_after=outcome.reset_after / _MICRO,
        retry_after=outcome.retry_after / _MICRO,
    )

