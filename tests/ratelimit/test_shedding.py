"""Load shedding: the gate and the adaptive limit (sans-I/O), and the middleware's 503s."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bastion.ratelimit import (
    ConcurrencyGate,
    FixedLimit,
    GradientLimit,
    LoadSheddingMiddleware,
    Metrics,
)
from bastion.ratelimit.shedding import Admission


def test_gate_admits_queues_then_sheds() -> None:
    """Up to the limit is admitted, the queue fills, and the rest is shed at once."""
    gate: ConcurrencyGate[str] = ConcurrencyGate(FixedLimit(2), queue_size=1, critical_reserve=1)
    outcomes = [gate.arrive(name) for name in "abcd"]
    assert outcomes == [Admission.ADMIT, Admission.ADMIT, Admission.QUEUE, Admission.SHED]
    assert gate.depart() == "c"
    assert (gate.inflight, list(gate.queue)) == (2, [])


def test_critical_requests_use_the_reserve_and_are_shed_last() -> None:
    """With ordinary traffic shed, critical requests still get the reserve slots."""
    gate: ConcurrencyGate[str] = ConcurrencyGate(FixedLimit(1), queue_size=0, critical_reserve=2)
    assert gate.arrive("normal") is Admission.ADMIT
    assert gate.arrive("normal-2") is Admission.SHED
    assert [gate.arrive("health", critical=True) for _ in range(3)] == [
        Admission.ADMIT, Admission.ADMIT, Admission.SHED,
    ]


def test_abandoned_ticket_leaves_the_queue() -> None:
    """A queued request that times out is removed and never admitted later."""
    gate: ConcurrencyGate[str] = ConcurrencyGate(FixedLimit(1), queue_size=2)
    gate.arrive("a")
    gate.arrive("b")
    assert gate.abandon("b") is True
    assert gate.abandon("b") is False
    assert gate.depart() is None


def test_gradient_limit_grows_while_latency_is_steady() -> None:
    """Steady latency under full use lets the limit grow up to its maximum."""
    limit = GradientLimit(10, minimum=2, maximum=40)
    for _ in range(200):
        limit.observe(0.010, inflight=limit.current)
    assert limit.current == 40


def test_gradient_limit_shrinks_when_latency_climbs() -> None:
    """Latency well above its long-term level drives the limit down towards the minimum."""
    limit = GradientLimit(40, minimum=4, maximum=40)
    for _ in range(50):
        limit.observe(0.010, inflight=40)
    for _ in range(50):
        limit.observe(0.100, inflight=40)
    assert limit.current < 10


def test_gradient_limit_learns_nothing_when_the_app_is_idle() -> None:
    """Samples taken with few requests in flight leave the limit as it is."""
    limit = GradientLimit(20)
    for latency in (0.01, 0.5, 0.01, 2.0):
        limit.observe(latency, inflight=1)
    assert limit.current == 20


@pytest.mark.parametrize(("arguments", "message"), [
    pytest.param({"initial": 1, "minimum": 2}, "need 1 <= minimum <= initial <= maximum",
                 id="initial-below-minimum"),
    pytest.param({"initial": 300}, "need 1 <= minimum <= initial <= maximum",
                 id="initial-above-maximum"),
])
def test_gradient_limit_rejects_inconsistent_bounds(arguments: dict[str, int], message: str) -> None:
    """Bounds that cannot hold are refused at construction."""
    with pytest.raises(ValueError, match=message):
        GradientLimit(**arguments)


class App:
    """Handlers that block until the test releases them."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def work(self, request: Request) -> PlainTextResponse:
        await self.release.wait()
        return PlainTextResponse("done")

    async def health(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")


async def settle(condition: object) -> None:
    for _ in range(1000):
        if condition():  # type: ignore[operator]  # a zero-argument predicate
            return
        await asyncio.sleep(0)
    raise AssertionError("the middleware never reached the expected state")


@pytest.mark.anyio
async def test_excess_concurrency_gets_503_with_retry_after_while_health_passes() -> None:
    """Over limit and queue, requests get 503 + Retry-After; health still passes; queued finish."""
    handlers = App()
    metrics = Metrics()
    app = Starlette(routes=[Route("/work", handlers.work), Route("/health", handlers.health)])
    shedder = LoadSheddingMiddleware(app, limit=FixedLimit(2), queue_size=1, queue_timeout=60,
                                     critical_paths=("/health",), retry_after=2, metrics=metrics)
    transport = httpx.ASGITransport(app=shedder)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        work = [asyncio.create_task(http.get("/work")) for _ in range(6)]
        await settle(lambda: sum(task.done() for task in work) == 3)
        shed = [task.result() for task in work if task.done()]
        pending = [task for task in work if not task.done()]
        health = await http.get("/health")
        assert (shedder.gate.inflight, len(shedder.gate.queue)) == (2, 1)
        handlers.release.set()
        finished = await asyncio.gather(*pending)
    assert [(r.status_code, r.headers["retry-after"], r.json()["error"]) for r in shed] == [
        (503, "2", "temporarily_unavailable")
    ] * 3
    assert health.status_code == 200
    assert [r.status_code for r in finished] == [200, 200, 200]
    assert metrics.value("bastion_loadshed_requests_total", priority="normal", outcome="shed") == 3
    assert shedder.gate.inflight == 0


@pytest.mark.anyio
async def test_a_queued_request_is_shed_when_its_wait_runs_out() -> None:
    """A request still queued after queue_timeout gets 503 rather than waiting on."""
    handlers = App()
    app = Starlette(routes=[Route("/work", handlers.work)])
    shedder = LoadSheddingMiddleware(app, limit=FixedLimit(1), queue_size=1, queue_timeout=0.01,
                                     metrics=Metrics())
    transport = httpx.ASGITransport(app=shedder)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        first = asyncio.create_task(http.get("/work"))
        await settle(lambda: shedder.gate.inflight == 1)
        queued = await http.get("/work")
        handlers.release.set()
        assert (await first).status_code == 200
    assert (queued.status_code, queued.headers["retry-after"]) == (503, "1")
    assert (shedder.gate.inflight, len(shedder.gate.queue)) == (0, 0)
