"""A guarded API in its own uvicorn process, in either shape, for attacks over a real network.

    python tests/guard/_serve.py PORT

Reads from the environment: GUARD_SHAPE (`asgi` for Starlette + GuardMiddleware, `fastapi` for
FastAPI + Guard), GUARD_DISCOVERY_URL, GUARD_AUDIENCE, GUARD_APIKEYS (a JSON key file, verified
with `last_used_at` written on every use) or GUARD_APIKEYS_DB (Bastion's database URL: keys verified
by DatabaseApiKeyVerifier, cached GUARD_APIKEYS_CACHE seconds, last use written on every use) and,
optionally, GUARD_REVOCATIONS (a revocation list URL polled every 50 ms with the test issuer's
client).

Routes: GET/POST /notes (notes:read / notes:write; POST answers the JSON it parsed), GET
/system/ping (API keys), WebSocket /ws (notes:read) and /ws/admin (notes:admin and the
notes:admin permission); each answers who called.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the Annotated dependencies.
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from bastion.guard import RBAC, Authenticator, Denylist, IssuerConfig, Principal, RequestGuard, require_scopes
from bastion.guard._core import ApiKeyVerifier
from bastion.guard.apikeys import ApiKeyManager, DatabaseApiKeyVerifier, JsonFileApiKeyStore
from bastion.guard.body import BodyLimitMiddleware
from bastion.guard.dependencies import Guard
from bastion.guard.middleware import WEBSOCKET, GuardMiddleware, RouteRule
from bastion.guard.request_id import RequestIdMiddleware
from bastion.guard.revocation import HttpRevocationPoller
from tests.guard._issuer import REVOCATION_CLIENT

MAX_DEPTH = 8
RULES = [
    RouteRule("/notes", require_scopes("notes:read"), frozenset({"GET"})),
    RouteRule("/notes", require_scopes("notes:write"), frozenset({"POST"})),
    RouteRule("/system/ping", require_scopes("notes:read", accept=["api_key"]), frozenset({"GET"})),
    RouteRule("/ws", require_scopes("notes:read"), WEBSOCKET),
    RouteRule("/ws/admin", require_scopes("notes:admin", permissions=["notes:admin"]), WEBSOCKET),
]


def describe(principal: Principal | None) -> dict[str, Any]:
    return {"actor": principal.actor if principal else None}


def request_guard() -> RequestGuard:
    denylist = Denylist()
    feeds = [
        HttpRevocationPoller(
            os.environ["GUARD_REVOCATIONS"],
            client_id=REVOCATION_CLIENT[0],
            client_secret=REVOCATION_CLIENT[1],
            denylist=denylist,
            http=httpx.AsyncClient(),
        )
        for _ in range(1 if "GUARD_REVOCATIONS" in os.environ else 0)
    ]
    authenticator = Authenticator(
        [IssuerConfig(os.environ["GUARD_DISCOVERY_URL"], os.environ["GUARD_AUDIENCE"])],
        denylist=denylist,
        revocation_feeds=feeds,
        revocation_interval=0.05,
    )
    keys: ApiKeyVerifier = ApiKeyManager(JsonFileApiKeyStore(Path(os.environ["GUARD_APIKEYS"])), last_used_resolution=0)
    if "GUARD_APIKEYS_DB" in os.environ:
        cache = float(os.environ.get("GUARD_APIKEYS_CACHE", "30"))
        keys = DatabaseApiKeyVerifier(os.environ["GUARD_APIKEYS_DB"], cache_seconds=cache, last_used_resolution=0)
    rbac = RBAC.from_mapping({"admin": ["notes:admin"]})
    return RequestGuard(authenticator, rbac=rbac, api_keys=keys, realm="test")


def starlette_app(guard: RequestGuard) -> Starlette:
    async def notes(request: Request) -> JSONResponse:
        if request.method == "POST":
            return JSONResponse({"parsed": await request.json()})
        return JSONResponse(describe(request.state.principal))

    async def ws(websocket: Any) -> None:
        await websocket.accept()
        await websocket.send_json(describe(websocket.state.principal))
        await websocket.close()

    routes = [
        *plain_routes(),
        Route("/notes", notes, methods=["GET", "POST"]),
        Route("/system/ping", notes, methods=["GET"]),
        WebSocketRoute("/ws", ws),
        WebSocketRoute("/ws/admin", ws),
    ]
    return Starlette(
        routes=routes, middleware=[*common_middleware(), Middleware(GuardMiddleware, guard=guard, rules=RULES)]
    )


def fastapi_app(guard: RequestGuard) -> FastAPI:
    app = FastAPI(openapi_url=None, middleware=common_middleware())
    deps = Guard(guard)
    deps.install(app)

    @app.get("/notes")
    async def notes(principal: Annotated[Principal, deps.require("notes:read")]) -> dict[str, Any]:
        return describe(principal)

    @app.post("/notes")
    async def create(body: dict[str, Any], principal: Annotated[Principal, deps.require("notes:write")]) -> Any:
        return {"parsed": body}

    @app.get("/system/ping")
    async def ping(principal: Annotated[Principal, deps.require("notes:read", accept=["api_key"])]) -> Any:
        return describe(principal)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, principal: Annotated[Principal, deps.require("notes:read")]) -> None:
        await websocket.accept()
        await websocket.send_json(describe(principal))
        await websocket.close()

    @app.websocket("/ws/admin")
    async def ws_admin(
        websocket: WebSocket,
        principal: Annotated[Principal, deps.require("notes:admin", permissions=["notes:admin"])],
    ) -> None:
        await websocket.accept()
        await websocket.send_json(describe(principal))
        await websocket.close()

    for route in plain_routes():
        if isinstance(route, Route):
            app.add_route(route.path, route.endpoint)
        else:
            app.router.add_websocket_route(route.path, route.endpoint)
    return app


def plain_routes() -> list[Any]:
    """GUARD_PLAIN=1 adds an HTTP and a WebSocket route nobody declared a requirement for."""
    if os.environ.get("GUARD_PLAIN") != "1":
        return []

    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({"served": True})

    async def plain_ws(websocket: Any) -> None:
        await websocket.accept()
        await websocket.send_json({"served": True})
        await websocket.close()

    return [Route("/plain", plain), WebSocketRoute("/plain/ws", plain_ws)]


def common_middleware() -> list[Middleware]:
    return [Middleware(RequestIdMiddleware), Middleware(BodyLimitMiddleware, max_depth=MAX_DEPTH)]


def main() -> None:
    guard = request_guard()
    app = starlette_app(guard) if os.environ["GUARD_SHAPE"] == "asgi" else fastapi_app(guard)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
