"""The Starlette/ASGI shape: route rules checked in middleware, plus body limits and headers.

`GuardMiddleware` refuses to start (lifespan startup fails) when a route of the wrapped
Starlette app has no rule, unless the rule marks it public: deny by default.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.guard._asgi import replaying
from bastion.guard._core import RequestGuard
from bastion.guard._errors import GuardError, UnprotectedRouteError
from bastion.guard.policy import Requirement
from bastion.guard.request_id import request_id_of
from bastion.protocol.errors import NotFound
from bastion.protocol.rfc6750 import ErrorResponse

__all__ = ["GuardMiddleware", "RouteRule", "check_routes"]

log = logging.getLogger("bastion.guard")

MATCH_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class RouteRule:
    """A route template (Starlette syntax), its methods, and its requirement."""

    path: str
    requirement: Requirement
    methods: frozenset[str] = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})

    def compiled(self) -> re.Pattern[str]:
        """The path template as a regular expression."""
        return compile_path(self.path)[0]


def check_routes(routes: Sequence[BaseRoute], rules: Sequence[RouteRule], prefix: str = "") -> None:
    """Raise UnprotectedRouteError for any route (and method) without a rule.

    Raises:
        UnprotectedRouteError: naming every uncovered route.
    """
    covered = {(r.path, m) for r in rules for m in r.methods}
    missing: list[str] = []
    for route in routes:
        if isinstance(route, Mount):
            check_routes(route.routes, rules, prefix + route.path)
        elif isinstance(route, Route):
            methods = (route.methods or {"GET"}) - {"HEAD", "OPTIONS"}
            missing += [f"{m} {prefix}{route.path}" for m in sorted(methods) if (prefix + route.path, m) not in covered]
    if missing:
        raise UnprotectedRouteError(
            "routes without a declared requirement (declare one or mark them public): " + ", ".join(missing)
        )


class GuardMiddleware:
    """ASGI middleware: authenticate and authorize every HTTP request by its route rule."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: RequestGuard,
        rules: Iterable[RouteRule],
        match_cache_size: int = MATCH_CACHE_SIZE,
    ) -> None:
        self.app = app
        self.guard = guard
        self.rules = list(rules)
        self._compiled = [(rule, rule.compiled()) for rule in self.rules]
        # Templates without parameters are matched by one dict lookup (first rule wins).
        # HEAD is checked as GET: its key holds the GET rule (a rule for HEAD alone is never used).
        self._exact: dict[tuple[str, str], RouteRule] = {}
        for rule in reversed(self.rules):
            if "{" not in rule.path:
                self._exact.update({(m, rule.path): rule for m in rule.methods if m != "HEAD"})
        self._exact.update({("HEAD", p): rule for (m, p), rule in list(self._exact.items()) if m == "GET"})
        # (method, path) -> the rule its templates matched, so that a hot path with parameters
        # runs no regular expression. Bounded (oldest out first): random paths cannot grow it,
        # and paths that match no rule are never stored.
        self._matched: dict[tuple[str, str], RouteRule] = {}
        self._matched_max = match_cache_size

    def _match(self, method: str, path: str) -> RouteRule | None:
        """The first rule whose template matches; HEAD is checked as GET."""
        if method == "HEAD":
            method = "GET"
        key = (method, path)
        exact = self._exact.get(key)
        if exact is not None:
            return exact
        known = self._matched.get(key)
        if known is not None:
            return known
        for rule, pattern in self._compiled:
            if method in rule.methods and pattern.match(path):
                if self._matched_max > 0:
                    if len(self._matched) >= self._matched_max:
                        del self._matched[next(iter(self._matched))]
                    self._matched[key] = rule
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        rule = self._exact.get((method, path)) or self._match(method, path)
        try:
            if rule is None:
                # Deny by default: a path with no rule is answered as missing.
                raise NotFound(detail="no rule for this route")
            # A token verified before is decided here without a coroutine; anything else
            # (and every refusal but a cached token's authorization) goes through `check`.
            principal = self.guard.check_cached(rule.requirement, scope)
            if principal is None:
                principal = await self.guard.check(
                    rule.requirement,
                    scope["headers"],
                    scope.get("query_string", b""),
                    target=(method, path),
                    request_id=request_id_of(scope),
                )
        except GuardError as error:
            log.info("guard refused %s %s: %s", method, path, error.detail)
            await send_error(self.guard.render(error), send)
            return
        state = scope.get("state")
        if state is None:
            scope["state"] = {"principal": principal}
        else:
            state["principal"] = principal
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                app = scope.get("app")
                if app is not None and hasattr(app, "routes"):
                    check_routes(app.routes, self.rules)
                await self.guard.authenticator.start()
            except Exception as exc:
                # Report it ourselves: servers treat an exception in lifespan as "unsupported"
                # and would start the unprotected app anyway.
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return

        async def on_shutdown(following: Message) -> None:
            if following["type"] == "lifespan.shutdown":
                await self.guard.authenticator.aclose()

        await self.app(scope, replaying(message, receive, on_shutdown), send)


async def send_error(response: ErrorResponse, send: Send) -> None:
    """Send a refusal as a JSON response."""
    body = response.body_bytes()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})

