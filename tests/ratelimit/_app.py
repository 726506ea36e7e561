"""A small Starlette app for the multi-process test: each route limited 10 per hour by one
algorithm, counted in the Redis named by BASTION_TEST_RL_REDIS under BASTION_TEST_RL_PREFIX."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bastion.ratelimit import Policy, RateLimiter, RateLimitMiddleware, RedisStore

ROUTES = {
    "/fixed": "fixed_window",
    "/log": "sliding_log",
    "/counter": "sliding_window",
    "/bucket": "token_bucket",
    "/gcra": "gcra",
}
LIMIT = 10


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


def create_app() -> RateLimitMiddleware:
    store = RedisStore(os.environ["BASTION_TEST_RL_REDIS"],
                       key_prefix=os.environ["BASTION_TEST_RL_PREFIX"], timeout=10)
    policies = [
        Policy(algorithm, LIMIT, 3600.0, algorithm,  # type: ignore[arg-type]  # algorithm and mode names are plain str here
               key=("route",), routes=(path,))
        for path, algorithm in ROUTES.items()
    ]
    app = Starlette(routes=[Route(path, ok) for path in [*ROUTES, "/ready"]])
    return RateLimitMiddleware(app, RateLimiter(store, policies))
