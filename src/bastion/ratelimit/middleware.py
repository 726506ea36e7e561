"""ASGI middleware applying route policies to every request.

Each policy with `routes` applies to matching requests (a route ending in `*` is a prefix);
the request is counted against each in turn, and the first refusal answers 429 with the
rendered headers. Admitted responses carry `RateLimit` and `RateLimit-Policy`.

A policy keyed on an identity (`sub`, `client_id`, `api_key_id`, `device`) counts only what an
outer layer resolved before the request reaches the limiter: with `bastion.guard`, put
`GuardMiddleware` before `RateLimitMiddleware` in the middleware list (a FastAPI app guarded by
dependencies counts per user with the `rate_limit` dependency instead: the dependencies run
after every middleware). In a guarded app, a policy that nothing can resolve fails the start-up,
naming it.
The decisions list is left in the scope under `DECISIONS_KEY`: an endpoint that counts more
policies itself (the server's per-client ones, once the client is authenticated) adds its
decisions there, and the fields are rendered once, from all of them, when the response starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.ratelimit.decision import Decision
from bastion.ratelimit.headers import rate_limit_headers, too_many_requests
from bastion.ratelimit.keys import IDENTITY_PARTS, KEY_FUNCTIONS, RESOLVES, KeyFunction, compose_key
from bastion.ratelimit.limiter import RateLimiter
from bastion.ratelimit.policy import KeyPart, Policy, PolicyError

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
        key_functions: override how `client_id`, `sub`, ... are read from the scope (an
            identity given a key function here counts as resolved).
        headers: add `RateLimit` fields to admitted responses too.
        resolved: the identity key parts the layers before this one set, checked at once;
            None (the default) finds them at start-up in a guarded Starlette app's middleware
            list (the classes' `resolves_rate_limit_keys`).

    Raises:
        PolicyError: at construction (with `resolved`) or at start-up, when a route policy is
            keyed on an identity nothing before the limiter resolves.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        *,
        key_functions: Mapping[KeyPart, KeyFunction] = KEY_FUNCTIONS,
        headers: bool = True,
        resolved: Iterable[KeyPart] | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.key_functions = {**KEY_FUNCTIONS, **key_functions}
        self.headers = headers
        self.route_policies = [p for p in limiter.policies.values() if p.routes]
        # An identity read by a key function of the caller's own counts as resolved.
        self._custom = frozenset(k for k, f in key_functions.items() if KEY_FUNCTIONS.get(k) is not f)
        self.resolved = None if resolved is None else frozenset(resolved)
        if self.resolved is not None:
            check_resolvable(self.route_policies, self.resolved | self._custom)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.resolved is None:
            await self._lifespan(scope, receive, send)
            return
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

    def _outer_resolves(self, app: Any) -> frozenset[str] | None:
        """The identities the layers listed before this one in a guarded `app` resolve.

        None when there is nothing to check: `app` has no middleware list with this limiter in
        it (wrapped by hand), or nothing in it authenticates through a layer that declares what
        it resolves (`resolves_rate_limit_keys` on a middleware class, or on `app.state` for a
        FastAPI app guarded by dependencies) - an application that counts identities its own
        way (Bastion's server counts `client_id` in its token endpoint) is left alone.
        """
        layers = getattr(app, "user_middleware", None)
        if layers is None:
            return None
        guarded = getattr(getattr(app, "state", None), RESOLVES, None) is not None
        resolved: set[str] = set()
        before: frozenset[str] | None = None
        for layer in layers:
            declared = getattr(layer.cls, RESOLVES, None)
            guarded = guarded or declared is not None
            if before is None and layer.cls is type(self) and layer.kwargs.get("limiter") is self.limiter:
                before = frozenset(resolved)
            resolved |= set(declared or ())
        return before if guarded else None

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] == "lifespan.startup":
            resolved = self._outer_resolves(scope.get("app"))
            if resolved is not None:
                try:
                    check_resolvable(self.route_policies, resolved | self._custom)
                except PolicyError as exc:
                    # Reported here: a server treats an exception in lifespan as "unsupported"
                    # and would start the app with the limit silently off.
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return message
            return await receive()

        await self.app(scope, replay, send)


def check_resolvable(policies: Iterable[Policy], resolved: Iterable[str]) -> None:
    """Refuse route policies keyed on an identity that nothing before the limiter resolves.

    Raises:
        PolicyError: naming the first such policy and key part, and the fix.
    """
    known = frozenset(resolved)
    for policy in policies:
        for part in policy.key:
            if part in IDENTITY_PARTS and part not in known:
                raise PolicyError(
                    f"rate-limit policy {policy.name!r} is keyed on {part!r}, which nothing before "
                    "RateLimitMiddleware resolves, so it would never apply: put the guard's "
                    "GuardMiddleware before RateLimitMiddleware, or count it with the rate_limit "
                    "dependency after the guard's requirement (FastAPI)"
                )


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
