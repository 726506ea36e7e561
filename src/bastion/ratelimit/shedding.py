"""Load shedding, sans-I/O: reject on system state, not on the caller.

A `ConcurrencyGate` admits up to a limit of requests in flight, parks a few more in a short
queue, and sheds the rest at once. The limit is fixed (`FixedLimit`) or adapts to observed
latency (`GradientLimit`, after Netflix's concurrency-limits Gradient2 and Envoy's
adaptive_concurrency filter): while latency stays near its long-term level the limit grows by
about its square root per sample, and when latency climbs the limit shrinks in proportion, so
the process stops taking work before every request slows down. Critical requests (health,
token revocation) get headroom above the limit and skip the queue, so they are shed last.
"""

from __future__ import annotations

import math
from collections import deque
from enum import Enum
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Limit(Protocol):
    """A concurrency limit that may learn from latency samples."""

    @property
    def current(self) -> int: ...

    def observe(self, latency: float, inflight: int) -> None:
        """Record one finished request's latency (seconds) and the in-flight count at its start."""
        ...


class FixedLimit:
    """A constant limit."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a concurrency limit is at least 1, got {limit}")
        self._limit = limit

    @property
    def current(self) -> int:
        return self._limit

    def observe(self, latency: float, inflight: int) -> None:
        return


class GradientLimit:
    """A limit driven by the gradient between long-term and short-term latency.

    Args:
        initial: the starting limit.
        minimum, maximum: the bounds the limit stays within.
        tolerance: how much short-term latency may exceed the long-term level before the limit
            shrinks (Gradient2's rttTolerance).
        smoothing: weight of each new estimate (0-1).
        short_window, long_window: sample counts of the two exponential averages.
    """

    def __init__(
        self,
        initial: int = 20,
        *,
        minimum: int = 2,
        maximum: int = 200,
        tolerance: float = 1.5,
        smoothing: float = 0.2,
        short_window: int = 10,
        long_window: int = 500,
    ) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")
        self._limit = float(initial)
        self.minimum, self.maximum = minimum, maximum
        self.tolerance, self.smoothing = tolerance, smoothing
        self._short_weight = 2 / (short_window + 1)
        self._long_weight = 2 / (long_window + 1)
        self.short_latency: float | None = None
        self.long_latency: float | None = None

    @property
    def current(self) -> int:
        return int(self._limit)

    def observe(self, latency: float, inflight: int) -> None:
        if self.short_latency is None or self.long_latency is None:
            self.short_latency = self.long_latency = latency
            return
        self.short_latency += (latency - self.short_latency) * self._short_weight
        self.long_latency += (latency - self.long_latency) * self._long_weight
        if self.long_latency > 2 * self.short_latency:
            # Gradient2: latency fell for good (load went away); let the long average follow.
            self.long_latency *= 0.95
        if inflight < self._limit / 2:
            return  # the application, not the limit, bounded concurrency: learn nothing
        gradient = max(0.5, min(1.0, self.tolerance * self.long_latency / self.short_latency))
        estimate = self._limit * gradient + math.sqrt(self._limit)
        smoothed = self._limit * (1 - self.smoothing) + estimate * self.smoothing
        self._limit = max(float(self.minimum), min(float(self.maximum), smoothed))


class Admission(Enum):
    ADMIT = "admit"
    QUEUE = "queue"
    SHED = "shed"


class ConcurrencyGate(Generic[T]):
    """Bookkeeping of in-flight and queued requests; tickets are the caller's waiters.

    Args:
        limit: the concurrency limit for ordinary requests.
        queue_size: ordinary requests that may wait for a slot (a short queue: waiting long
            is worse than a quick 503 the client can retry elsewhere).
        critical_reserve: extra slots only critical requests may take.
    """

    def __init__(self, limit: Limit, *, queue_size: int = 8, critical_reserve: int = 4) -> None:
        self.limit = limit
        self.queue_size = queue_size
        self.critical_reserve = critical_reserve
        self.inflight = 0
        self.queue: deque[T] = deque()

    def arrive(self, ticket: T, *, critical: bool = False) -> Admission:
        """Admit, queue or shed one arriving request."""
        capacity = self.limit.current + (self.critical_reserve if critical else 0)
        if self.inflight < capacity and (critical or not self.queue):
            self.inflight += 1
            return Admission.ADMIT
        if not critical and len(self.queue) < self.queue_size:
            self.queue.append(ticket)
            return Admission.QUEUE
        return Admission.SHED

    def depart(self) -> T | None:
        """One admitted request finished; return the queued ticket now admitted, if any."""
        self.inflight -= 1
        if self.queue and self.inflight < self.limit.current:
            self.inflight += 1
            return self.queue.popleft()
        return None

    def abandon(self, ticket: T) -> bool:
        """A queued request gave up waiting; False if it had already been admitted."""
        try:
            self.queue.remove(ticket)
        except ValueError:
            return False
        return True
