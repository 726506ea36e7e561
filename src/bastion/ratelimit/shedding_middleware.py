"""ASGI middleware that sheds load with 503 and `Retry-After` before the process drowns."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.ratelimit.metrics import DEFAULT_METRICS, Metrics
from bastion.ratelimit.shedding import Admission, ConcurrencyGate, GradientLimit, Limit

_BODY = json.dumps(
    {"error": "temporarily_unavailable",
     "error_description": "the server is overloaded; retry later"},
    separators=(",", ":"),
).encode()


class LoadSheddingMiddleware:
    """Admits at most the limit of HTTP requests at once; queues a few, sheds the rest.

    Args:
        app: the wrapped application.
        limit: `FixedLimit(n)` or `GradientLimit(...)` (the default adapts to latency).
        queue_size: ordinary requests that may wait for a slot.
        queue_timeout: seconds a queued request waits before it is shed.
        critical_paths: path prefixes (health, revocation) that skip the queue and may use
            `critical_reserve` slots beyond the limit, so they are shed last.
        retry_after: the `Retry-After` seconds of a 503 (RFC 9110 §10.2.3).
        clock: monotonic seconds, for latency samples.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: Limit | None = None,
        queue_size: int = 8,
        queue_timeout: float = 0.1,
        critical_paths: Sequence[str] = ("/health", "/revoke"),
        critical_reserve: int = 4,
        retry_after: int = 1,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics = DEFAULT_METRICS,
    ) -> None:
        self.app = app
        self.gate: ConcurrencyGate[asyncio.Future[None]] = ConcurrencyGate(
            limit or GradientLimit(), queue_size=queue_size, critical_reserve=critical_reserve
        )
        self.queue_timeout = queue_timeout
        self.critical_paths = tuple(critical_paths)
        self.retry_after = retry_after
        self.clock = clock
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        critical = scope["path"].startswith(self.critical_paths)
        priority = "critical" if critical else "normal"
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        admission = self.gate.arrive(ticket, critical=critical)
        if admission is Admission.QUEUE and not await self._wait(ticket):
            admission = Admission.SHED
        if admission is Admission.SHED:
            self.metrics.inc("bastion_loadshed_requests_total", priority=priority, outcome="shed")
            await self._send_503(send)
            return
        self.metrics.inc("bastion_loadshed_requests_total", priority=priority, outcome="admitted")
        inflight = self.gate.inflight
        self._gauges()
        started = self.clock()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.limit.observe(self.clock() - started, inflight)
            self._release()

    def _release(self) -> None:
        woken = self.gate.depart()
        if woken is not None and not woken.done():
            woken.set_result(None)
        self._gauges()

    async def _wait(self, ticket: asyncio.Future[None]) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(ticket), self.queue_timeout)
        except TimeoutError:
            if self.gate.abandon(ticket):
                return False
            # Admitted just as the wait ran out: the slot is ours, use it.
        except asyncio.CancelledError:
            if not self.gate.abandon(ticket):
                self._release()  # admitted, then the client went away: hand the slot on
            raise
        return True

    def _gauges(self) -> None:
        self.metrics.set("bastion_loadshed_limit", self.gate.limit.current)
        self.metrics.set("bastion_loadshed_inflight", self.gate.inflight)

    async def _send_503(self, send: Send) -> None:
        await send({
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BODY)).encode()),
                (b"retry-after", str(self.retry_after).encode()),
            ],
        })
        await send({"type": "http.response.body", "body": _BODY})
