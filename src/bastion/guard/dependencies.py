"""The FastAPI shape: a requirement is a dependency, and every route must declare one.

guard = Guard(RequestGuard(authenticator, rbac=rbac))
guard.install(app)                      # error handler + start-up check + discovery

@app.get("/notes")
async def notes(principal: Annotated[Principal, guard.require("notes:read")]): ...

@app.get("/health", dependencies=[guard.public()])
async def health(): ...

@app.websocket("/feed")
async def feed(websocket: WebSocket, principal: Annotated[Principal, guard.require("feed:read")]): ...

Deny by default covers every kind of route: an HTTP or WebSocket route without a requirement
stops the start-up, and so does a route FastAPI cannot give one (`app.add_route`,
`app.add_websocket_route`, a mounted application that does not guard itself, an unknown route
type); host routes and mounted routers are walked. A refused WebSocket handshake is answered
before it is accepted (`middleware.deny_websocket`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute

from bastion.guard._core import RequestGuard
from bastion.guard._errors import GuardError, UnprotectedRouteError, UnresolvedRateLimitKey
from bastion.guard._principal import Kind, Principal
from bastion.guard.middleware import deny_websocket, guarded_app, uncovered_routes
from bastion.guard.policy import PUBLIC, Credential, Requirement, require_scopes
from bastion.guard.request_id import request_id_of

__all__ = ["Guard", "GuardedRoute", "RequirementDependency"]


class RequirementDependency:
    """The callable FastAPI runs for a route's requirement; its type marks the route declared."""

    def __init__(self, guard: RequestGuard, requirement: Requirement) -> None:
        self.guard = guard
        self.requirement = requirement

    async def __call__(self, connection: HTTPConnection) -> Principal | None:
        # An HTTPConnection: FastAPI passes the Request of an HTTP route and the WebSocket of a
        # WebSocket route, whose handshake is checked like a request.
        scope = connection.scope
        checked: dict[int, Principal | None] = scope.setdefault("state", {}).setdefault("guard_checked", {})
        if id(self) in checked:
            return checked[id(self)]
        principal = await self.guard.check(
            self.requirement,
            scope["headers"],
            scope.get("query_string", b""),
            target=(scope.get("method", "WEBSOCKET"), scope["path"]),
            request_id=request_id_of(scope),
        )
        connection.state.principal = principal
        checked[id(self)] = principal
        return principal


class GuardedRoute(APIRoute):
    """An APIRoute that checks its requirements before FastAPI reads the body.

    FastAPI parses the JSON body before it resolves dependencies, so without this an
    unauthenticated caller sending broken JSON would get a 422 describing the body instead of
    a 401: credentials first, then input.
    """

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        requirements = list(_requirements(self.dependant))

        async def guarded(request: Request) -> Any:
            for requirement in requirements:
                await requirement(request)
            return await handler(request)

        return guarded


def _requirements(dependant: Any) -> Iterable[RequirementDependency]:
    call = getattr(dependant, "call", None)
    if isinstance(call, RequirementDependency):
        yield call
    for sub in getattr(dependant, "dependencies", ()):
        yield from _requirements(sub)


def _declares(dependant: Any) -> bool:
    if isinstance(getattr(dependant, "call", None), RequirementDependency):
        return True
    return any(_declares(d) for d in getattr(dependant, "dependencies", ()))


class Guard:
    """Dependencies and start-up checks for a FastAPI application."""

    def __init__(self, guard: RequestGuard) -> None:
        self.guard = guard

    def require(
        self,
        *scopes: str,
        permissions: Sequence[str] = (),
        accept: Iterable[Credential] = ("token",),
        kinds: Iterable[Kind] | None = None,
    ) -> Any:
        """A dependency that authenticates the caller and checks scopes AND permissions."""
        requirement = require_scopes(*scopes, permissions=permissions, accept=accept, kinds=kinds)
        return Depends(RequirementDependency(self.guard, requirement))

    def public(self) -> Any:
        """A dependency that marks a route as deliberately public."""
        return Depends(RequirementDependency(self.guard, PUBLIC))

    def check_routes(self, app: FastAPI) -> None:
        """Raise UnprotectedRouteError for any route without a declared requirement.

        FastAPI's own documentation routes (openapi.json, docs) are public by construction.
        """
        missing = _undeclared(app.routes, "", _documentation(app))
        if missing:
            raise UnprotectedRouteError(
                "routes without a declared requirement (declare one or mark them public): " + ", ".join(missing)
            )
        for route in _api_routes(app.routes):
            _check_rate_limits(route)

    def install(self, app: FastAPI) -> None:
        """Render refusals per RFC 6750 §3, and at start-up check routes and discover issuers.

        Call it before adding routes: routes added afterwards check credentials before
        their request body is parsed (`GuardedRoute`).
        """

        async def handle(connection: HTTPConnection, exc: Exception) -> JSONResponse | None:
            if not isinstance(exc, GuardError):  # pragma: no cover - registered for GuardError
                raise exc
            rendered = self.guard.render(exc)
            if isinstance(connection, WebSocket):
                # WebSocket.send keeps Starlette's record of the handshake's state.
                await deny_websocket(connection.scope, rendered, connection.send)
                return None
            return JSONResponse(
                rendered.body,
                status_code=rendered.status_code,
                headers={**dict(rendered.headers), "Cache-Control": "no-store"},
            )

        # One handler for both kinds of connection (Starlette types it as two overloads).
        app.add_exception_handler(GuardError, handle)  # type: ignore[arg-type]
        # Routes added from now on check credentials before their body is parsed.
        app.router.route_class = GuardedRoute
        # For bastion.ratelimit: this app is guarded, and no middleware knows the caller (the
        # requirements run after every middleware), so a per-user route policy of
        # RateLimitMiddleware would never apply: it refuses to start.
        app.state.resolves_rate_limit_keys = frozenset()
        original = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(inner: Any) -> AsyncIterator[Any]:
            self.check_routes(app)
            await self.guard.authenticator.start()
            try:
                async with original(inner) as state:
                    yield state
            finally:
                await self.guard.authenticator.aclose()

        app.router.lifespan_context = lifespan


def _api_routes(routes: Sequence[BaseRoute]) -> Iterable[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif isinstance(route, Mount | Host):
            yield from _api_routes(route.routes)


def _calls(dependant: Any) -> Iterable[Any]:
    yield getattr(dependant, "call", None)
    for sub in getattr(dependant, "dependencies", ()):
        yield from _calls(sub)


def _check_rate_limits(route: APIRoute) -> None:
    """A per-caller limit (`bastion.ratelimit.rate_limit` keyed on `sub`, ...) needs a requirement
    that authenticates the caller on its route; without one it would never count anything.

    Raises:
        UnresolvedRateLimitKey: naming the route, the policy and the key.
    """
    calls = list(_calls(route.dependant))
    authenticated = any(isinstance(c, RequirementDependency) and not c.requirement.public for c in calls)
    if authenticated:
        return
    for call in calls:
        for policy, part in getattr(call, "identities", ()):
            raise UnresolvedRateLimitKey(
                f"rate-limit policy {policy!r} on {','.join(sorted(route.methods or ()))} {route.path} is keyed on "
                f"{part!r}, which only an authenticated caller has: give the route a requirement "
                "(guard.require(...)), or key the policy on source_address"
            )


def _documentation(app: FastAPI) -> set[str]:
    """The paths of FastAPI's own documentation routes (plain routes it adds itself)."""
    urls = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    return {url for url in urls if url}


def _undeclared(routes: Sequence[BaseRoute], prefix: str, documentation: set[str]) -> list[str]:
    """Every route under `routes` that is served without a declared requirement."""
    missing: list[str] = []
    for route in routes:
        if isinstance(route, APIRoute):
            if not _declares(route.dependant):
                missing.append(f"{','.join(sorted(route.methods or ()))} {prefix}{route.path}")
        elif isinstance(route, APIWebSocketRoute):
            if not _declares(route.dependant):
                missing.append(f"WEBSOCKET {prefix}{route.path}")
        elif isinstance(route, Route):
            # `app.add_route`: a plain Starlette route runs no dependency, so it cannot declare one.
            if prefix + route.path not in documentation:
                methods = ",".join(sorted((route.methods or {"GET"}) - {"HEAD"}))
                missing.append(f"{methods} {prefix}{route.path} (a plain route, which takes no requirement)")
        elif isinstance(route, WebSocketRoute):
            missing.append(f"WEBSOCKET {prefix}{route.path} (a plain route, which takes no requirement)")
        elif isinstance(route, Mount):
            missing += _undeclared_mount(route, prefix)
        elif isinstance(route, Host):
            missing += _undeclared(route.routes, prefix, documentation)
        else:
            missing.append(f"{type(route).__name__} {prefix}{getattr(route, 'path', '?')}")
    return missing


def _undeclared_mount(mount: Mount, prefix: str) -> list[str]:
    """A mount is declared when the mounted application guards itself (its rules then cover its
    routes), or when every route of the mounted router or FastAPI application is declared."""
    rules = guarded_app(mount.app)
    if rules is not None:
        return uncovered_routes(mount.routes, rules, prefix + mount.path)
    if mount.routes:
        documentation = _documentation(mount.app) if isinstance(mount.app, FastAPI) else set()
        return _undeclared(mount.routes, prefix + mount.path, {prefix + mount.path + d for d in documentation})
    return [f"MOUNT {prefix}{mount.path} (an application that does not guard itself)"]
