"""The Starlette/ASGI shape: route rules checked in middleware, plus body limits and headers.

`GuardMiddleware` refuses to start (lifespan startup fails) when a route of the wrapped
Starlette app has no rule, unless the rule marks it public: deny by default. Every kind of route
counts: HTTP routes, WebSocket routes (a rule with the method `WEBSOCKET`), mounted applications
(their routes, or a rule for the whole mount), and host routes.

A WebSocket handshake is authenticated like a request, by its `Authorization` header, and
refused before it is accepted (`deny_websocket`). A token carried in `Sec-WebSocket-Protocol`
is not read: a subprotocol is echoed back by servers and logged by proxies, and RFC 6750 §2
allows one way per request, as for a token in the query string.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.guard._asgi import replaying
from bastion.guard._core import RequestGuard
from bastion.guard._errors import GuardError, UnprotectedRouteError
from bastion.guard.policy import Requirement
from bastion.guard.request_id import request_id_of
from bastion.protocol.errors import NotFound
from bastion.protocol.rfc6750 import ErrorResponse

__all__ = [
    "WEBSOCKET",
    "GuardMiddleware",
    "RouteRule",
    "check_routes",
    "deny_websocket",
    "guarded_app",
    "uncovered_routes",
]

log = logging.getLogger("bastion.guard")

MATCH_CACHE_SIZE = 1024
# The method of a rule for WebSocket handshakes: `RouteRule("/feed", requirement, WEBSOCKET)`.
# No default rule covers one: a WebSocket route is declared on purpose or refused.
WEBSOCKET = frozenset({"WEBSOCKET"})
# RFC 6455 §7.4.1: "policy violation", for a server without the denial response extension.
POLICY_VIOLATION = 1008


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
    missing = uncovered_routes(routes, rules, prefix)
    if missing:
        raise UnprotectedRouteError(
            "routes without a declared requirement (declare one or mark them public): " + ", ".join(missing)
        )


def uncovered_routes(routes: Sequence[BaseRoute], rules: Sequence[RouteRule], prefix: str = "") -> list[str]:
    """Each route (and method) under `routes` that no rule covers, as `METHOD /path`."""
    return _uncovered(routes, {(r.path, m) for r in rules for m in r.methods}, prefix)


def _uncovered(routes: Sequence[BaseRoute], covered: set[tuple[str, str]], prefix: str) -> list[str]:
    missing: list[str] = []
    for route in routes:
        if isinstance(route, Route):
            methods = (route.methods or {"GET"}) - {"HEAD", "OPTIONS"}
            missing += [f"{m} {prefix}{route.path}" for m in sorted(methods) if (prefix + route.path, m) not in covered]
        elif isinstance(route, WebSocketRoute):
            if (prefix + route.path, "WEBSOCKET") not in covered:
                missing.append(f"WEBSOCKET {prefix}{route.path}")
        elif isinstance(route, Mount) and route.routes:
            missing += _uncovered(route.routes, covered, prefix + route.path)
        elif isinstance(route, Mount):
            # An application with no routes to walk (static files, any ASGI app): one rule for
            # everything under it, per method, as its requests reach this middleware.
            whole = f"{prefix}{route.path}/{{path:path}}"
            if not any(path == whole for path, _ in covered):
                missing.append(f"MOUNT {whole}")
        elif isinstance(route, Host):
            missing += _uncovered(route.routes, covered, prefix)
        else:
            # A route type this check does not know is not served unchecked: deny by default.
            missing.append(f"{type(route).__name__} {prefix}{getattr(route, 'path', '?')}")
    return missing


def guarded_app(app: object) -> list[RouteRule] | None:
    """The rules of a `GuardMiddleware` guarding `app` (itself, or in its Starlette middleware
    list), or None when nothing does: a mounted application that guards itself is declared."""
    if isinstance(app, GuardMiddleware):
        return app.rules
    for middleware in getattr(app, "user_middleware", ()) if isinstance(app, Starlette) else ():
        if middleware.cls is GuardMiddleware:
            return list(middleware.kwargs.get("rules", ()))
    return None


class GuardMiddleware:
    """ASGI middleware: authenticate and authorize every HTTP request and WebSocket handshake by
    its route rule."""

    # The identities a `bastion.ratelimit.RateLimitMiddleware` listed after this one can count
    # by (read from the principal this middleware puts in the scope's state).
    resolves_rate_limit_keys = frozenset({"sub", "client_id", "api_key_id"})

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
            elif scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
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
            if rule is None:  # `check` logs every other refusal, with its reason
                log.debug("guard refused %s %s request_id=%s reason=no_rule", method, path, request_id_of(scope) or "-")
            await send_error(self.guard.render(error), send)
            return
        state = scope.get("state")
        if state is None:
            scope["state"] = {"principal": principal}
        else:
            state["principal"] = principal
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate and authorize a WebSocket handshake by its route rule, before accept."""
        path = scope["path"]
        rule = self._match("WEBSOCKET", path)
        try:
            if rule is None:
                raise NotFound(detail="no rule for this WebSocket route")
            principal = await self.guard.check(
                rule.requirement,
                scope["headers"],
                scope.get("query_string", b""),
                target=("WEBSOCKET", path),
                request_id=request_id_of(scope),
            )
        except GuardError as error:
            if rule is None:
                log.debug("guard refused WEBSOCKET %s request_id=%s reason=no_rule", path, request_id_of(scope) or "-")
            await deny_websocket(scope, self.guard.render(error), send)
            return
        scope.setdefault("state", {})["principal"] = principal
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


def _error_headers(response: ErrorResponse, body: bytes) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    return headers + [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers]


async def send_error(response: ErrorResponse, send: Send) -> None:
    """Send a refusal as a JSON response."""
    body = response.body_bytes()
    headers = _error_headers(response, body)
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def deny_websocket(scope: Scope, response: ErrorResponse, send: Send) -> None:
    """Refuse a WebSocket handshake before it is accepted.

    With the ASGI WebSocket Denial Response extension (uvicorn, hypercorn, daphne) the client
    gets the same HTTP answer as a request (401 or 403 with its RFC 6750 §3 `WWW-Authenticate`
    and JSON body), so it can tell a missing token from a missing scope; without it, a close
    with 1008 (policy violation, RFC 6455 §7.4.1), which servers answer with an HTTP 403 while
    the handshake is pending.
    """
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = response.body_bytes()
        headers = _error_headers(response, body)
        await send({"type": "websocket.http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": str(response.body.get("error", ""))})
