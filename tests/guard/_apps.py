"""The same small API in both shapes: Starlette + GuardMiddleware, and FastAPI + Guard."""

# No `from __future__ import annotations`: FastAPI must evaluate the Annotated dependencies,
# which refer to the local `deps`.
from typing import Annotated, Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.guard import PUBLIC, Principal, RequestGuard, require_scopes
from bastion.guard.dependencies import Guard
from bastion.guard.middleware import GuardMiddleware, RouteRule

GET, POST = frozenset({"GET"}), frozenset({"POST"})

RULES = [
    RouteRule("/public", PUBLIC, GET),
    RouteRule("/notes", require_scopes("notes:read"), GET),
    RouteRule("/notes", require_scopes("notes:write"), POST),
    RouteRule("/admin/stats", require_scopes("notes:admin", permissions=["notes:admin"]), GET),
    RouteRule("/system/ping", require_scopes("notes:read", accept=["api_key"]), GET),
    RouteRule("/either", require_scopes("notes:read", accept=["token", "api_key"]), GET),
]


def _describe(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {"ok": True}
    return {"actor": principal.actor, "kind": principal.kind}


def starlette_app(guard: RequestGuard, *, extra_routes: list[Route] | None = None) -> Starlette:
    async def handler(request: Request) -> JSONResponse:
        return JSONResponse(_describe(request.state.principal))

    routes = [
        Route("/public", handler, methods=["GET"]),
        Route("/notes", handler, methods=["GET", "POST"]),
        Route("/admin/stats", handler, methods=["GET"]),
        Route("/system/ping", handler, methods=["GET"]),
        Route("/either", handler, methods=["GET"]),
        *(extra_routes or []),
    ]
    return Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, guard=guard, rules=RULES)])


def fastapi_app(guard: RequestGuard, *, unprotected: bool = False) -> FastAPI:
    app = FastAPI(openapi_url=None)
    deps = Guard(guard)
    deps.install(app)

    @app.get("/public", dependencies=[deps.public()])
    async def public() -> dict[str, Any]:
        return _describe(None)

    @app.get("/notes")
    async def notes(principal: Annotated[Principal, deps.require("notes:read")]) -> dict[str, Any]:
        return _describe(principal)

    @app.post("/notes")
    async def create(principal: Annotated[Principal, deps.require("notes:write")]) -> dict[str, Any]:
        return _describe(principal)

    @app.get("/admin/stats")
    async def admin(
        principal: Annotated[Principal, deps.require("notes:admin", permissions=["notes:admin"])],
    ) -> dict[str, Any]:
        return _describe(principal)

    @app.get("/system/ping")
    async def ping(principal: Annotated[Principal, deps.require("notes:read", accept=["api_key"])]) -> dict[str, Any]:
        return _describe(principal)

    @app.get("/either")
    async def either(
        principal: Annotated[Principal, deps.require("notes:read", accept=["token", "api_key"])],
    ) -> dict[str, Any]:
        return _describe(principal)

    if unprotected:

        @app.get("/forgotten")
        async def forgotten() -> dict[str, Any]:
            return {}

    return app
