"""ASGI middleware applying route policies to every request.

Each policy with `routes` applies to matching requests (a route ending in `*` is a prefix);
the request is counted against each in turn, and the first refusal answers 429 with the
rendered headers. Admitted responses carry `RateLimit` and `RateLimit-Policy`.

The decisions list is left in the scope under `DECISIONS_KEY`: an endpoint that counts more
policies itself (the server's per-client ones, once the client is authenticated) adds its
decisions there, and the fields are rendered once, from all of them, when the response starts.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.ratelimit.decision import Decision
from bastion.ratelimit.headers import rate_limit_headers, too_many_requests
from bastion.ratelimit.keys import KEY_FUNCTIONS, KeyFunction, compose_key
from bastion.ratelimit.limiter import RateLimiter
from bastion.ratelimit.policy import KeyPart, Policy

DECISIONS_KEY = "bastion.ratelimit.decisions"


def route_matches(policy: Policy, method: str, path: str) -> bool:
    """Whether the middleware applies `policy` to this request."""
    if policy.methods and method not in policy.methods:
        return False
    return any(
        path.startswith(route[:-1]) if route.endswith("*") else path == route
        for route in policy.routes
    )


class RateLimitMiddleware:
    """Counts HTTP requests against the limiter's route policies.

    Args:
        app: the wrapped application.
        limiter: its policies with non-empty `routes` are applied.
        key_functions: override how `client_id`, `sub`, ... are read from the scope.
        headers: add `RateLimit` fields to admitted responses too.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        *,
        key_functions: Mapping[KeyPart, KeyFunction] = KEY_FUNCTIONS,
        headers: bool = True,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.key_functions = {**KEY_FUNCTIONS, **key_functions}
        self.headers = headers
        self.route_policies = [p for p in limiter.policies.values() if p.routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.route_policies:
            await self.app(scope, receive, send)
            return
        decisions: list[Decision] = []
        if self.headers:
            scope[DECISIONS_KEY] = decisions
        for policy in self.route_policies:
            if not route_matches(policy, scope["method"], scope["path"]):
                continue
            key = compose_key(policy.key, scope, self.key_functions)
            if key is None:
                continue
            decision = await self.limiter.hit(policy.name, key)
            decisions.append(decision)
            if not decision.allowed:
                await _send_429(send, decisions)
                return
        if not self.headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            # Rendered now: the endpoint may have added its own decisions to the list. A
            # response that has its fields already (an endpoint's own 429) keeps them alone.
            if message["type"] == "http.response.start" and decisions and not _has_fields(message):
                extra = [(k.lower().encode(), v.encode()) for k, v in rate_limit_headers(decisions)]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _has_fields(message: Message) -> bool:
    return any(name == b"ratelimit" for name, _ in message.get("headers", ()))


async def _send_429(send: Send, decisions: list[Decision]) -> None:
    response = too_many_requests(decisions)
    headers = [
        (b"content-type", response.media_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in response.headers),
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
