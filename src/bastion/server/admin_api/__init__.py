"""The admin HTTP API (`/admin/...`): clients, users and their roles, sessions and grants,
signing keys, API keys and the audit trail, for a caller with an admin token (`_auth`),
described by the OpenAPI 3.1 document at `/admin/openapi.json`. It acts only through the
operations layer the CLI shares (`server.admin`, `server.admin_people`,
`server.admin_apikeys`), so both refuse and audit alike."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.server.admin_api import apikeys, clients, people, system
from bastion.server.admin_api._auth import ADMIN_ROLE, ADMIN_SCOPE
from bastion.server.admin_api._http import Operation, route
from bastion.server.admin_api.openapi import document
from bastion.server.context import ServerContext
from bastion.server.responses import json_response

OPERATIONS: tuple[Operation, ...] = (
    *clients.OPERATIONS,
    *people.OPERATIONS,
    *system.OPERATIONS,
    *apikeys.OPERATIONS,
)


async def openapi_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    return json_response(document(OPERATIONS, ctx.issuer))


def _routes() -> list[Route]:
    """One route per path, dispatching on the method (Starlette answers 405 for the others)."""
    routes = [Route("/admin/openapi.json", openapi_endpoint, methods=["GET"])]
    routes += [route(op) for op in OPERATIONS]
    return routes


ADMIN_ROUTES = _routes()

__all__ = ["ADMIN_ROLE", "ADMIN_ROUTES", "ADMIN_SCOPE", "OPERATIONS"]
