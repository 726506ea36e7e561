"""Deny by default for every kind of route, WebSocket handshakes included, against a guarded API
served by its own uvicorn process in both shapes (Starlette + GuardMiddleware, FastAPI + Guard)
and a real WebSocket client (`websockets`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Mount, Route, Router, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bastion.guard import PUBLIC, Authenticator, IssuerConfig, RequestGuard, require_scopes
from bastion.guard.dependencies import Guard
from bastion.guard.middleware import WEBSOCKET, GuardMiddleware, RouteRule
from tests.guard._issuer import AUDIENCE, TestIssuer
from tests.guard._live_api import LiveApi, running_api, start_api

pytestmark = pytest.mark.anyio

MISSING = {"error_description": "Authentication required: send 'Authorization: Bearer <token>'."}
INVALID = {"error": "invalid_token", "error_description": "The access token is invalid, expired or revoked."}


@pytest.fixture(scope="module", params=["asgi", "fastapi"])
def live_api(
    request: pytest.FixtureRequest, live_issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """The guarded API of `_serve.py` in each shape, in its own uvicorn process."""
    with running_api(request.param, live_issuer, tmp_path_factory.mktemp(request.param)) as api:
        yield api


async def refusal(url: str, **options: Any) -> tuple[int, str | None, dict[str, Any]]:
    """Open a WebSocket expecting the handshake to be refused: (status, WWW-Authenticate, body)."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=30, **options):
            pass
    response = refused.value.response
    return response.status_code, response.headers.get("www-authenticate"), json.loads(response.body or b"{}")


async def test_handshake_with_a_valid_token_is_accepted(live_api: LiveApi) -> None:
    """A handshake whose Authorization header carries a token with the scope opens, with its principal."""
    token = live_api.issuer.mint(sub="alice", scope="notes:read")
    async with connect(live_api.ws_url + "/ws", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert json.loads(await ws.recv()) == {"actor": "user:alice"}


def _refusals(issuer: TestIssuer) -> list[Any]:
    return [
        pytest.param("/ws", {}, 401, 'Bearer realm="test"', MISSING, id="no-token"),
        pytest.param(
            "/ws",
            {"additional_headers": {"Authorization": "Bearer not.a.token"}},
            401,
            'Bearer realm="test", error="invalid_token", '
            'error_description="The access token is invalid, expired or revoked."',
            INVALID,
            id="invalid-token",
        ),
        pytest.param(
            "/ws",
            {"additional_headers": {"Authorization": f"Bearer {issuer.mint(exp=1)}"}},
            401,
            None,
            INVALID,
            id="expired-token",
        ),
        pytest.param(f"/ws?access_token={issuer.mint()}", {}, 401, 'Bearer realm="test"', MISSING, id="token-in-query"),
        pytest.param(
            "/ws",
            {"subprotocols": ["bearer", issuer.mint()]},
            401,
            'Bearer realm="test"',
            MISSING,
            id="token-in-subprotocol",
        ),
        pytest.param(
            "/ws",
            {"additional_headers": {"Authorization": f"Bearer {issuer.mint(scope='notes:write')}"}},
            403,
            'Bearer realm="test", error="insufficient_scope", error_description="The access token does not '
            'grant the scope this request needs.", scope="notes:read"',
            {
                "error": "insufficient_scope",
                "error_description": "The access token does not grant the scope this request needs.",
                "scope": "notes:read",
            },
            id="insufficient-scope",
        ),
        pytest.param(
            "/ws/admin",
            {"additional_headers": {"Authorization": f"Bearer {issuer.mint(scope='notes:admin')}"}},
            403,
            None,
            {
                "error": "forbidden",
                "error_description": "requires role admin; the token carries no roles claim: request the `roles` scope",
            },
            id="scope-without-role",
        ),
    ]


@pytest.mark.parametrize("case", range(7), ids=[p.id for p in _refusals(TestIssuer())])
async def test_handshake_is_refused_before_accept(live_api: LiveApi, case: int) -> None:
    """A handshake without a usable token, or without the scope or role, gets the RFC 6750 §3 answer
    as an HTTP denial response: the connection never opens."""
    path, options, status, challenge, body = _refusals(live_api.issuer)[case].values

    refused = await refusal(live_api.ws_url + path, **options)

    assert refused[0] == status
    if challenge is not None:
        assert refused[1] == challenge
    assert refused[2] == body


async def test_admin_handshake_with_scope_and_role_is_accepted(live_api: LiveApi) -> None:
    """Scopes AND roles apply to a handshake as to a request: with both, the socket opens."""
    token = live_api.issuer.mint(sub="root", scope="notes:admin", roles=["admin"])
    async with connect(live_api.ws_url + "/ws/admin", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert json.loads(await ws.recv()) == {"actor": "user:root"}


@pytest.mark.parametrize("shape", ["asgi", "fastapi"])
def test_undeclared_plain_routes_stop_the_process(live_issuer: TestIssuer, tmp_path: Path, shape: str) -> None:
    """Routes added as plain Starlette routes (FastAPI's `app.add_route`, `app.router.add_websocket_route`)
    without a requirement stop uvicorn's start-up, named in the error; nothing is served."""
    process = start_api(shape, live_issuer, tmp_path, GUARD_PLAIN="1")
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        pytest.fail("the API started with undeclared routes")
    log = next(tmp_path.glob("api-*.log")).read_text()

    assert process.returncode != 0
    named = {
        "asgi": "GET /plain, WEBSOCKET /plain/ws",
        "fastapi": "GET /plain (a plain route, which takes no requirement), "
        "WEBSOCKET /plain/ws (a plain route, which takes no requirement)",
    }[shape]
    assert f"routes without a declared requirement (declare one or mark them public): {named}" in log


def guard_for(issuer: TestIssuer) -> RequestGuard:
    return RequestGuard(Authenticator([IssuerConfig(f"{issuer.issuer}/.well-known/openid-configuration", AUDIENCE)]))


async def _startup_failure(app: Any) -> str | None:
    """The message of a failed lifespan start-up (None when it completed)."""
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    failed = [m for m in sent if m["type"] == "lifespan.startup.failed"]
    return failed[0]["message"] if failed else None


async def _endpoint(request: Any) -> Any:
    return PlainTextResponse("served")


async def _ws_endpoint(websocket: Any) -> None:
    await websocket.close()


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("served")(scope, receive, send)


HTTP_READ = RouteRule("/notes", require_scopes("notes:read"), frozenset({"GET"}))


@pytest.mark.parametrize(
    ("routes", "rules", "missing"),
    [
        pytest.param([WebSocketRoute("/feed", _ws_endpoint)], [], "WEBSOCKET /feed", id="websocket-route"),
        pytest.param(
            [WebSocketRoute("/feed", _ws_endpoint)],
            [RouteRule("/feed", PUBLIC)],
            "WEBSOCKET /feed",
            id="http-rule-does-not-cover-websocket",
        ),
        pytest.param([Mount("/static", app=_asgi_app)], [], "MOUNT /static/{path:path}", id="opaque-mount"),
        pytest.param(
            [Host("api.example", app=Router([Route("/hosted", _endpoint)]))], [], "GET /hosted", id="host-route"
        ),
        pytest.param(
            [Mount("/v1", routes=[WebSocketRoute("/feed", _ws_endpoint)])], [], "WEBSOCKET /v1/feed", id="mounted-ws"
        ),
    ],
)
async def test_asgi_shape_refuses_to_start_with_an_undeclared_route(
    live_issuer: TestIssuer, routes: list[Any], rules: list[RouteRule], missing: str
) -> None:
    """GuardMiddleware's start-up check walks every kind of route and names the undeclared one."""
    app = Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, guard=guard_for(live_issuer), rules=rules)])

    assert await _startup_failure(app) == (
        f"routes without a declared requirement (declare one or mark them public): {missing}"
    )


async def test_asgi_shape_starts_when_websocket_and_mount_are_declared(live_issuer: TestIssuer) -> None:
    """A WEBSOCKET rule and a rule for a whole mount declare them."""
    rules = [RouteRule("/feed", PUBLIC, WEBSOCKET), RouteRule("/static/{path:path}", PUBLIC, frozenset({"GET"}))]
    routes = [WebSocketRoute("/feed", _ws_endpoint), Mount("/static", app=_asgi_app)]
    app = Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, guard=guard_for(live_issuer), rules=rules)])

    assert await _startup_failure(app) is None


def _fastapi_with(add: str, guard: Guard) -> FastAPI:
    app = FastAPI()
    guard.install(app)
    if add == "websocket":

        @app.websocket("/feed")
        async def feed(websocket: Any) -> None:
            await websocket.close()

    elif add == "add_route":
        app.add_route("/plain", _endpoint)
    elif add == "add_websocket_route":
        app.router.add_websocket_route("/plain", _ws_endpoint)
    elif add == "mount":
        app.mount("/static", _asgi_app)
    elif add == "host":
        app.host("api.example", Starlette(routes=[Route("/hosted", _endpoint)]))
    elif add == "sub-app":
        sub = FastAPI(openapi_url=None)
        sub.add_api_route("/open", _endpoint)
        app.mount("/sub", sub)
    return app


@pytest.mark.parametrize(
    ("add", "missing"),
    [
        pytest.param("websocket", "WEBSOCKET /feed", id="websocket-without-requirement"),
        pytest.param("add_route", "GET /plain (a plain route, which takes no requirement)", id="add-route"),
        pytest.param(
            "add_websocket_route",
            "WEBSOCKET /plain (a plain route, which takes no requirement)",
            id="add-websocket-route",
        ),
        pytest.param("mount", "MOUNT /static (an application that does not guard itself)", id="opaque-mount"),
        pytest.param("host", "GET /hosted (a plain route, which takes no requirement)", id="host-route"),
        pytest.param("sub-app", "GET /sub/open", id="mounted-fastapi-route"),
    ],
)
async def test_fastapi_shape_refuses_to_start_with_an_undeclared_route(
    live_issuer: TestIssuer, add: str, missing: str
) -> None:
    """FastAPI's start-up check covers WebSocket routes, plain routes, mounts, hosts and sub-applications."""
    app = _fastapi_with(add, Guard(guard_for(live_issuer)))

    with pytest.raises(Exception, match=r"routes without a declared requirement") as refused:
        async with app.router.lifespan_context(app):
            pass
    assert str(refused.value) == f"routes without a declared requirement (declare one or mark them public): {missing}"


async def test_fastapi_accepts_a_mounted_app_that_guards_itself(live_issuer: TestIssuer) -> None:
    """A mounted Starlette app under GuardMiddleware is declared by its own rules (docs routes stay public)."""
    guard = Guard(guard_for(live_issuer))
    app = FastAPI()
    guard.install(app)
    inner = Starlette(
        routes=[Route("/hosted", _endpoint)],
        middleware=[
            Middleware(GuardMiddleware, guard=guard.guard, rules=[RouteRule("/api/hosted", PUBLIC, frozenset({"GET"}))])
        ],
    )
    app.mount("/api", inner)

    async with app.router.lifespan_context(app):
        pass
