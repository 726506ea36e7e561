"""Per-route limits as a FastAPI (or plain Starlette) dependency.

`Depends(rate_limit(limiter, "api_per_key"))` counts the request against the named policies,
reading keys from the request like the middleware does; a refusal raises `RateLimited`, which
`rate_limited_handler` (registered once with `add_exception_handler`) renders as the 429.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response

from bastion.ratelimit.decision import Decision
from bastion.ratelimit.headers import RateLimitResponse, too_many_requests
from bastion.ratelimit.keys import KEY_FUNCTIONS, KeyFunction, compose_key
from bastion.ratelimit.limiter import RateLimiter
from bastion.ratelimit.policy import KeyPart


class RateLimited(Exception):
    """A request was refused; `response` is the rendered 429."""

    def __init__(self, response: RateLimitResponse) -> None:
        super().__init__("rate limited")
        self.response = response


def rate_limit(
    limiter: RateLimiter,
    *names: str,
    key_functions: Mapping[KeyPart, KeyFunction] = KEY_FUNCTIONS,
) -> Callable[[Request], Awaitable[list[Decision]]]:
    """A dependency counting each request against the named policies, in order.

    Policies whose key attributes are missing from the request do not apply. Returns the
    decisions (for `RateLimit` headers on the response); raises `RateLimited` on refusal.

    Raises:
        UnknownPolicy: at once, when a name is not one of the limiter's policies.
    """
    policies = [limiter.policy(name) for name in names]
    functions = {**KEY_FUNCTIONS, **key_functions}

    async def dependency(request: Request) -> list[Decision]:
        decisions: list[Decision] = []
        for policy in policies:
            key = compose_key(policy.key, request.scope, functions)
            if key is None:
                continue
            decision = await limiter.hit(policy.name, key)
            decisions.append(decision)
            if not decision.allowed:
                raise RateLimited(too_many_requests(decisions))
        return decisions

    return dependency


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    """Exception handler rendering `RateLimited` as its 429."""
    if not isinstance(exc, RateLimited):
        raise exc
    rendered = exc.response
    return Response(
        rendered.body, status_code=rendered.status_code, headers=dict(rendered.headers),
        media_type=rendered.media_type,
    )
