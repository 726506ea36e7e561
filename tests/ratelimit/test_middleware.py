"""RateLimitMiddleware in-process: per-route policies, key functions, 429 rendering."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.ratelimit import (
    MemoryStore,
    Metrics,
    RateLimiter,
    RateLimitMiddleware,
    compose_key,
    parse_policies,
)
from tests.ratelimit.conftest import FakeClock

pytestmark = pytest.mark.anyio


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def authenticate(app: ASGIApp) -> ASGIApp:
    """Stands in for the guard: reads the caller from a header into scope state."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if b"x-client" in headers:
                scope.setdefault("state", {})["client_id"] = headers[b"x-client"].decode()
        await app(scope, receive, send)

    return wrapped


def make_client(policies: dict[str, object], clock: FakeClock) -> Callable[[], httpx.AsyncClient]:
    limiter = RateLimiter(MemoryStore(), parse_policies(policies, defaults=False), clock=clock,
                          metrics=Metrics())
    app = Starlette(routes=[Route("/token", ok, methods=["GET", "POST"]),
                            Route("/api/items", ok), Route("/health", ok, methods=["GET", "POST"])])
    asgi = authenticate(RateLimitMiddleware(app, limiter))

    def client() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=asgi, client=("198.51.100.9", 4321))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    return client


async def test_route_policy_answers_429_with_headers_and_body(clock: FakeClock) -> None:
    """The third request to a 2/minute route gets 429 with Retry-After and RateLimit fields."""
    client = make_client({"token": {"limit": "2/minute", "algorithm": "gcra",
                                    "key": ["source_address"], "routes": ["/token"]}}, clock)
    async with client() as http:
        statuses = [(await http.post("/token")).status_code for _ in range(2)]
        refused = await http.post("/token")
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate_limited",
                              "error_description": "too many requests; retry in 30 s",
                              "policy": "token", "retry_after": 30}
    assert [(k, v) for k, v in refused.headers.items() if k.startswith(("ratelimit", "retry"))] == [
        ("ratelimit-policy", '"token";q=2;w=60'),
        ("ratelimit", '"token";r=0;t=30'),
        ("retry-after", "30"),
    ]


async def test_admitted_responses_carry_ratelimit_fields(clock: FakeClock) -> None:
    """An admitted response says how much is left."""
    client = make_client({"token": {"limit": "5/minute", "algorithm": "fixed_window",
                                    "routes": ["/token"]}}, clock)
    async with client() as http:
        response = await http.get("/token")
    assert (response.status_code, response.headers["ratelimit"]) == (200, '"token";r=4;t=20')


async def test_stacked_route_policies_give_one_set_of_headers(clock: FakeClock) -> None:
    """Two policies on one route still yield each header field once."""
    client = make_client({
        "api_burst": {"limit": "100/minute", "routes": ["/api/*"]},
        "api_quota": {"limit": "1/day", "algorithm": "fixed_window", "kind": "quota",
                      "calendar": True, "routes": ["/api/*"]},
    }, clock)
    async with client() as http:
        await http.get("/api/items")
        refused = await http.get("/api/items")
    assert refused.status_code == 429
    assert refused.json()["error"] == "quota_exceeded"
    names = [k for k, _ in refused.headers.multi_items()]
    assert (names.count("ratelimit"), names.count("ratelimit-policy"),
            names.count("retry-after")) == (1, 1, 1)


@pytest.mark.parametrize(
    ("method", "path", "limited"),
    [
        pytest.param("GET", "/token", False, id="other-method"),
        pytest.param("POST", "/health", False, id="other-route"),
        pytest.param("POST", "/token", True, id="matching"),
    ],
)
async def test_policies_apply_only_to_their_routes_and_methods(
    clock: FakeClock, method: str, path: str, limited: bool
) -> None:
    """A route policy with methods counts only matching method and path."""
    client = make_client({"token": {"limit": "1/minute", "routes": ["/token"],
                                    "methods": ["POST"]}}, clock)
    async with client() as http:
        statuses = [(await http.request(method, path)).status_code for _ in range(2)]
    assert statuses == ([200, 429] if limited else [200, 200])


async def test_per_client_policy_skips_anonymous_requests_and_counts_clients_apart(
    clock: FakeClock,
) -> None:
    """A client_id policy ignores requests without a client and counts each client alone."""
    client = make_client({"per_client": {"limit": "1/minute", "key": ["client_id"],
                                         "routes": ["/token"]}}, clock)
    async with client() as http:
        anonymous = [(await http.get("/token")).status_code for _ in range(3)]
        first = [(await http.get("/token", headers={"x-client": "a"})).status_code
                 for _ in range(2)]
        other = (await http.get("/token", headers={"x-client": "b"})).status_code
    assert (anonymous, first, other) == ([200, 200, 200], [200, 429], 200)


def test_combined_keys_cannot_collide() -> None:
    """Length-prefixed parts keep ('a|b', 'c') and ('a', 'b|c') apart."""
    def scope(client_id: str, sub: str) -> dict[str, object]:
        return {"state": {"client_id": client_id, "sub": sub}}

    assert compose_key(("client_id", "sub"), scope("a|b", "c")) != compose_key(
        ("client_id", "sub"), scope("a", "b|c")
    )
    assert compose_key(("client_id", "sub"), {"state": {"client_id": "a"}}) is None
