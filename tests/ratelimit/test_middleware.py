"""RateLimitMiddleware in-process: per-route policies, key functions, 429 rendering."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.guard import Authenticator, Guard, GuardMiddleware, Principal, RequestGuard
from bastion.ratelimit import (
    MemoryStore,
    Metrics,
    PolicyError,
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


def test_identity_keys_are_read_from_the_guards_principal() -> None:
    """`sub`, `client_id` and `api_key_id` come from the principal bastion.guard puts in the state."""
    user = Principal("user", "alice-sub", frozenset(), client_id="spa")
    system = Principal("api_key", "billing", frozenset(), api_key_id="k123")

    assert compose_key(("sub", "client_id"), {"state": {"principal": user}}) == "9:alice-sub|3:spa"
    assert compose_key(("api_key_id",), {"state": {"principal": system}}) == "4:k123"
    assert compose_key(("sub",), {"state": {"principal": None}}) is None


PER_SUB = {"per_user": {"limit": "5/minute", "key": ["sub"], "routes": ["/api/*"]}}
UNRESOLVED = (
    "rate-limit policy 'per_user' is keyed on 'sub', which nothing before RateLimitMiddleware "
    "resolves, so it would never apply: put the guard's GuardMiddleware before RateLimitMiddleware, "
    "or count it with the rate_limit dependency after the guard's requirement (FastAPI)"
)


async def lifespan_messages(app: ASGIApp) -> list[dict[str, object]]:
    """What the app sends for a lifespan start-up followed by a shutdown."""
    incoming: list[dict[str, object]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return incoming.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


def limiter_for(policies: dict[str, object], clock: FakeClock) -> RateLimiter:
    return RateLimiter(MemoryStore(), parse_policies(policies, defaults=False), clock=clock, metrics=Metrics())


@pytest.mark.parametrize("shape", ["starlette", "fastapi"])
async def test_policy_keyed_on_an_identity_nothing_resolves_fails_start_up(clock: FakeClock, shape: str) -> None:
    """In a guarded app, a per-`sub` route policy with no guard before the limiter (the
    GuardMiddleware after it; a FastAPI app's guard runs as dependencies, after every middleware)
    stops the start-up, naming the policy and the key."""
    limiter = Middleware(RateLimitMiddleware, limiter=limiter_for(PER_SUB, clock))
    app: ASGIApp
    if shape == "fastapi":
        app = FastAPI(middleware=[limiter])
        Guard(RequestGuard(Authenticator([]))).install(app)
    else:
        guard = Middleware(GuardMiddleware, guard=RequestGuard(Authenticator([])), rules=[])
        app = Starlette(middleware=[limiter, guard])

    assert await lifespan_messages(app) == [{"type": "lifespan.startup.failed", "message": UNRESOLVED}]


async def test_guard_before_the_limiter_resolves_identities(clock: FakeClock) -> None:
    """With GuardMiddleware before it, the same policy starts (the guard resolves `sub`)."""
    guard = RequestGuard(Authenticator([]))
    app = Starlette(
        middleware=[
            Middleware(GuardMiddleware, guard=guard, rules=[]),
            Middleware(RateLimitMiddleware, limiter=limiter_for(PER_SUB, clock)),
        ]
    )

    assert await lifespan_messages(app) == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


def test_declared_resolved_identities_are_checked_at_construction(clock: FakeClock) -> None:
    """`resolved=` (for an app wrapped by hand) is checked when the middleware is built."""
    app = Starlette()
    with pytest.raises(PolicyError) as caught:
        RateLimitMiddleware(app, limiter_for(PER_SUB, clock), resolved=["client_id"])
    assert str(caught.value) == UNRESOLVED
    RateLimitMiddleware(app, limiter_for(PER_SUB, clock), resolved=["sub"])


async def test_an_unguarded_app_counting_identities_its_own_way_is_left_alone(clock: FakeClock) -> None:
    """Without bastion.guard in the app (Bastion's server counts `client_id` in its token
    endpoint), a policy keyed on an identity starts: the app may resolve it elsewhere."""
    app = Starlette(middleware=[Middleware(RateLimitMiddleware, limiter=limiter_for(PER_SUB, clock))])

    assert await lifespan_messages(app) == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
