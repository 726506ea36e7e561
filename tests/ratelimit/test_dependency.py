"""The FastAPI dependency: per-route policies by name, 429 through the exception handler."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI

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
