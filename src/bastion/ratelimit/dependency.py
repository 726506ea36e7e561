"""Per-route limits as a FastAPI (or plain Starlette) dependency.

`Depends(rate_limit(limiter, "api_per_key"))` counts the request against the named policies,
reading keys from the request like the middleware does; a refusal raises `RateLimited`, which
`rate_limited_handler` (registered once with `add_exception_handler`) renders as the 429.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response

from bastion.ratelimit.decision import Decision
from bastion.ratelimit.headers import RateLimitResponse, too_many_requests
from bastion.ratelimit.keys import IDENTITY_PARTS, KEY_FUNCTIONS, KeyFunction, compose_key
from bastion.ratelimit.limiter import RateLimiter
from bastion.ratelimit.policy import KeyPart


class RateLimited(Exception):
    """A request was refused; `response` is the rendered 429."""

    def __init__(self, response: RateLimitResponse) -> None:
        super().__init__("rate limited")
        self.response = response


class RateLimitDependency:
    """The callable `rate_limit` returns (FastAPI calls it with the request).

    `identities` lists the (policy, key part) pairs only authentication resolves: a FastAPI app
    guarded by `bastion.guard` refuses to start when a route using this dependency has no
    requirement that authenticates the caller (its limit would never apply).
    """

    def __init__(self, limiter: RateLimiter, names: Sequence[str], key_functions: Mapping[KeyPart, KeyFunction]):
        self.limiter = limiter
        self.policies = [limiter.policy(name) for name in names]
        self.functions = {**KEY_FUNCTIONS, **key_functions}
        custom = {k for k, f in key_functions.items() if KEY_FUNCTIONS.get(k) is not f}
        self.identities = [
            (p.name, part) for p in self.policies for part in p.key if part in IDENTITY_PARTS and part not in custom
        ]

    async def __call__(self, request: Request) -> list[Decision]:
        decisions: list[Decision] = []
        for policy in self.policies:
            key = compose_key(policy.key, request.scope, self.functions)
            if key is None:
                continue
            decision = await self.limiter.hit(policy.name, key)
            decisions.append(decision)
            if not decision.allowed:
                raise RateLimited(too_many_requests(decisions))
        return decisions


def rate_limit(
    limiter: RateLimiter,
    *names: str,
    key_functions: Mapping[KeyPart, KeyFunction] = KEY_FUNCTIONS,
) -> Callable[[Request], Awaitable[list[Decision]]]:
    """A dependency counting each request against the named policies, in order.

    Policies whose key attributes are missing from the request do not apply. Returns the
    decisions (for `RateLimit` headers on the response); raises `RateLimited` on refusal. With
    `bastion.guard`, a policy keyed on `sub`, `client_id` or `api_key_id` counts the caller the
    route's requirement authenticated (FastAPI runs the guard's requirement first).

    Raises:
        UnknownPolicy: at once, when a name is not one of the limiter's policies.
    """
    return RateLimitDependency(limiter, names, key_functions)


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    """Exception handler rendering `RateLimited` as its 429."""
    if not isinstance(exc, RateLimited):
        raise exc
    rendered = exc.response
    return Response(
        rendered.body, status_code=rendered.status_code, headers=dict(rendered.headers),
        media_type=rendered.media_type,
    )
