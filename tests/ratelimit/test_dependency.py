"""The FastAPI dependency: per-route policies by name, 429 through the exception handler."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI

from bastion.guard import Authenticator, Guard, RequestGuard, UnresolvedRateLimitKey
from bastion.ratelimit import (
    Decision,
    MemoryStore,
    Metrics,
    Policy,
    RateLimited,
    RateLimiter,
    UnknownPolicy,
    rate_limit,
    rate_limited_handler,
)
from tests.ratelimit.conftest import FakeClock

pytestmark = pytest.mark.anyio


def make_app(clock: FakeClock) -> FastAPI:
    limiter = RateLimiter(
        MemoryStore(),
        [Policy("items_per_address", 2, 60.0, "gcra"),
         Policy("items_per_sub", 1, 60.0, "gcra", key=("sub",))],
        clock=clock, metrics=Metrics(),
    )
    app = FastAPI()
    app.add_exception_handler(RateLimited, rate_limited_handler)

    limited = Depends(rate_limit(limiter, "items_per_address", "items_per_sub"))

    @app.get("/items")
    async def items(decisions: list[Decision] = limited) -> dict[str, int]:
        return {"remaining": min(d.remaining for d in decisions)}

    return app


async def test_dependency_limits_the_route_and_renders_429(clock: FakeClock) -> None:
    """Two requests pass, the third gets the rendered 429; an absent `sub` skips its policy."""
    transport = httpx.ASGITransport(app=make_app(clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        passed = [(await http.get("/items")).json() for _ in range(2)]
        refused = await http.get("/items")
    assert passed == [{"remaining": 1}, {"remaining": 0}]
    assert (refused.status_code, refused.headers["retry-after"], refused.json()["policy"]) == (
        429, "30", "items_per_address",
    )


def test_unknown_policy_names_fail_when_the_route_is_declared() -> None:
    """A misspelt policy name fails at declaration, not on the first request."""
    limiter = RateLimiter(MemoryStore(), [], metrics=Metrics())
    with pytest.raises(UnknownPolicy):
        rate_limit(limiter, "missing")


def guarded_app(clock: FakeClock, *, public: bool) -> FastAPI:
    """A FastAPI app guarded by bastion.guard, with a per-`sub` limit on one route."""
    limiter = RateLimiter(MemoryStore(), [Policy("per_user", 5, 60.0, key=("sub",))], clock=clock, metrics=Metrics())
    guard = Guard(RequestGuard(Authenticator([])))
    app = FastAPI()
    guard.install(app)
    requirement = guard.public() if public else guard.require("items:read")

    @app.get("/items", dependencies=[requirement, Depends(rate_limit(limiter, "per_user"))])
    async def items() -> dict[str, str]:
        return {}

    return app


async def test_a_per_caller_limit_on_a_route_nobody_authenticates_fails_start_up(clock: FakeClock) -> None:
    """A per-`sub` dependency on a public route would never count: the guarded app refuses to start."""
    app = guarded_app(clock, public=True)
    with pytest.raises(UnresolvedRateLimitKey) as caught:
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - the start-up fails

    assert str(caught.value) == (
        "rate-limit policy 'per_user' on GET /items is keyed on 'sub', which only an authenticated caller has: "
        "give the route a requirement (guard.require(...)), or key the policy on source_address"
    )


async def test_a_per_caller_limit_behind_a_requirement_starts(clock: FakeClock) -> None:
    """The same dependency behind the guard's requirement starts (the guard resolves `sub`)."""
    app = guarded_app(clock, public=False)
    async with app.router.lifespan_context(app):
        pass
