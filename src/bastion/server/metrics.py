"""The server's Prometheus metrics (`prometheus-client`), and who may read them.

Requests by route template and status with a latency histogram (`RequestMetricsMiddleware`),
grants by type and outcome, sign-ins by outcome, refused access tokens by endpoint and reason,
the database pool (in use, waiting), and the age of each algorithm's active signing key; the
rate limiter's own series (`bastion.ratelimit.metrics`) are served with them.

Labels come from bounded sets only (route templates, our grant types, our error codes, a fixed
table of reasons): a label taken from a request would let anyone grow the scrape without bound.
With several workers `bastion serve` gives them a private `PROMETHEUS_MULTIPROC_DIR`; every
worker writes its values there and the worker that is scraped sums them all
(`MultiProcessCollector`). Gauges are per living worker (`livesum`, `livemostrecent`): a worker
that is gone is marked dead at the next scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.guard.request_id import TrustedPeers
from bastion.keys.keyring import active_schedule
from bastion.protocol.errors import InvalidToken
from bastion.ratelimit import DEFAULT_METRICS
from bastion.server.context import ServerContext
from bastion.store.pool import pool_status

REGISTRY: Final = CollectorRegistry(auto_describe=True)
UNMATCHED: Final = "unmatched"
PUBLISH_EVERY: Final = 2.0  # seconds between a worker's writes of its gauges and rate-limit counts

REQUESTS: Final = Counter(
    "bastion_http_requests_total", "HTTP requests by route template and status.", ("route", "status"),
    registry=REGISTRY,
)
LATENCY: Final = Histogram(
    "bastion_http_request_duration_seconds", "Time from a request's arrival to its last response byte, by route.",
    ("route",), registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GRANTS: Final = Counter(
    "bastion_grants_total", "Token requests by grant type and outcome (issued, or the OAuth error code).",
    ("grant_type", "outcome"), registry=REGISTRY,
)
LOGINS: Final = Counter("bastion_logins_total", "Password sign-ins by outcome.", ("outcome",), registry=REGISTRY)
TOKEN_FAILURES: Final = Counter(
    "bastion_token_validation_failures_total", "Access tokens refused, by endpoint and reason.",
    ("endpoint", "reason"), registry=REGISTRY,
)
POOL_IN_USE: Final = Gauge(
    "bastion_db_pool_in_use", "Database connections checked out, summed over workers.",
    registry=REGISTRY, multiprocess_mode="livesum",
)
POOL_WAITING: Final = Gauge(
    "bastion_db_pool_waiting", "Callers waiting for a database connection, summed over workers.",
    registry=REGISTRY, multiprocess_mode="livesum",
)
KEY_AGE: Final = Gauge(
    "bastion_signing_key_age_seconds", "Seconds since the active signing key of each algorithm began signing.",
    ("alg",), registry=REGISTRY, multiprocess_mode="livemostrecent",
)

# An InvalidToken's description names its reason; some descriptions carry the token's own
# values (`typ not accepted: 'x'`), so the label is the first matching prefix's reason.
_REASONS: Final = (
    ("expired", "expired"),
    ("not yet valid", "not_yet_valid"),
    ("issued in the future", "not_yet_valid"),
    ("signature", "signature"),
    ("audience", "audience"),
    ("looks like an ID token", "id_token"),
    ("algorithm", "header"),
    ("typ ", "header"),
    ("header", "header"),
    ("crit", "header"),
)
_CLAIMS: Final = re.compile(r"^\w+ (missing|is not)")


def failure_reason(error: InvalidToken) -> str:
    """A bounded label for why the shared validator refused a token."""
    for prefix, reason in _REASONS:
        if error.description.startswith(prefix):
            return reason
    return "claims" if _CLAIMS.match(error.description) else "malformed"


_FAILURES: dict[tuple[str, str], Counter] = {}


def count_token_failure(endpoint: str, reason: str) -> None:
    """Count an access token refused at `endpoint` (a route) for `reason` (a fixed word)."""
    child = _FAILURES.get((endpoint, reason))
    if child is None:
        child = _FAILURES[endpoint, reason] = TOKEN_FAILURES.labels(endpoint, reason)
    child.inc()


_GRANTS: dict[tuple[str, str], Counter] = {}


def count_grant(grant_type: str, outcome: str) -> None:
    """Count a token request; both labels come from the server's own fixed sets."""
    child = _GRANTS.get((grant_type, outcome))
    if child is None:
        child = _GRANTS[grant_type, outcome] = GRANTS.labels(grant_type, outcome)
    child.inc()


def count_login(outcome: str) -> None:
    LOGINS.labels(outcome).inc()


class RouteNames:
    """A request path's route template: an exact route path, a mount's prefix, or `unmatched`."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.paths = frozenset(route.path for route in routes if isinstance(route, Route))
        self.mounts = tuple(route.path for route in routes if isinstance(route, Mount) and route.path)

    def __call__(self, path: str) -> str:
        if path in self.paths:
            return path
        for prefix in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix + "/*"
        return UNMATCHED

    @property
    def names(self) -> tuple[str, ...]:
        return (*sorted(self.paths), *(prefix + "/*" for prefix in self.mounts), UNMATCHED)


class RequestMetricsMiddleware:
    """Counts every HTTP request by route template and status, and observes its latency.

    The label children are bound once (latency per route at start, counts per route and
    status on first use), so a request costs two dict lookups, an increment and an observation.
    """

    def __init__(self, app: ASGIApp, *, routes: RouteNames) -> None:
        self.app = app
        self.routes = routes
        self._latency = {name: LATENCY.labels(name) for name in routes.names}
        self._counts: dict[tuple[str, int], Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response starts is answered 500 further out

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = self.routes(scope["path"])
            self._latency[route].observe(time.perf_counter() - started)
            child = self._counts.get((route, status))
            if child is None:
                child = self._counts[route, status] = REQUESTS.labels(route, str(status))
            child.inc()


async def refresh(ctx: ServerContext) -> None:
    """Write this process's gauges (pool, key ages) and rate-limit counts to the registry."""
    DEFAULT_METRICS.sync()
    status = pool_status(ctx.database)
    POOL_IN_USE.set(status.in_use)
    POOL_WAITING.set(status.waiting)
    try:
        keys = await ctx.keyring.published_keys()
    except Exception:  # the database is down: scrape the rest, ages come back with it
        return
    now = int(time.time())
    for alg in sorted({key.alg for key in keys}):
        active = active_schedule(keys, alg, now)
        if active is not None:
            KEY_AGE.labels(alg).set(now - active.activates_at)


def multiprocess_dir() -> Path | None:
    """The shared directory of several workers' values, when `bastion serve` made one."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(path) if path else None


async def publish_forever(ctx: ServerContext) -> None:
    """With several workers, publish this worker's values every few seconds (the scraped worker
    publishes its own at the scrape); with one there is nothing to do until a scrape."""
    if multiprocess_dir() is None:
        return
    try:
        while True:
            with contextlib.suppress(Exception):  # a database hiccup must not end publishing
                await refresh(ctx)
            await asyncio.sleep(PUBLISH_EVERY)
    finally:
        _mark_dead(os.getpid(), None)  # this worker's gauges stop counting when it stops


def _mark_dead(pid: int, directory: str | None) -> None:
    mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # unannotated in the library


def _forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of workers that died without saying so (a crash, SIGKILL)."""
    for file in directory.glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _mark_dead(int(pid), str(directory))
        except PermissionError:
            pass  # alive, someone else's: not ours to judge


def exposition() -> bytes:
    """Every metric in the Prometheus text format, summed over workers when there are several."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY) + generate_latest(DEFAULT_METRICS.registry)
    _forget_dead_workers(directory)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]  # unannotated library
    return generate_latest(registry)


def metrics_endpoint(clients: Sequence[str]) -> Route:
    """/metrics for the addresses in `clients` only; anyone else gets the unknown-route 404,
    whatever the method (a 405 would tell a stranger the route exists).

    The address judged is `request.client`: behind a proxy, the client the trusted proxy
    forwarded (`ProxyHeadersMiddleware` runs first), so a request through the proxy is judged by
    its real origin, and a forwarded header from any other peer is not believed. A scraper
    using another method than GET or HEAD gets 405.
    """
    allowed = TrustedPeers(clients)

    async def endpoint(request: Request) -> Response:
        if request.client is None or request.client.host not in allowed:
            return PlainTextResponse("Not Found", status_code=404)
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        await refresh(request.app.state.ctx)
        return Response(exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # An ASGI app rather than a function: Starlette then routes every method here, so the
    # stranger's 404 never depends on the method.
    return Route("/metrics", _EveryMethod(endpoint))


class _EveryMethod:
    """A request endpoint as a plain ASGI app (a Route then matches it for every method)."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.app = request_response(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
