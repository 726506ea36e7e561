"""Token introspection (RFC 7662) for resource servers registered with `--introspect`.

RFC 7662 §4: anything the caller may not know about (invalid, expired, revoked, unknown, or
outside the caller's audiences) is `{"active": false}` with no reason.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.events import audit
from bastion.protocol.errors import UnauthorizedClient
from bastion.protocol.rfc6749.params import check_content_type, parse_form, require
from bastion.protocol.rfc7662 import INACTIVE, active_response, visible_to
from bastion.server.access_log import note
from bastion.server.checks.client_auth import authenticate_client
from bastion.server.context import ServerContext
from bastion.server.metrics import count_token_failure
from bastion.server.responses import NO_STORE, json_response, read_body
from bastion.server.tokens import read_access_token

ENDPOINT = "/introspect"


async def introspection_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    check_content_type(request.headers.get("content-type"))
    params = parse_form(await read_body(request))
    source = request.client.host if request.client else "unknown"
    caller = await authenticate_client(ctx, request.headers.get("authorization"), params, source, request.url.path)
    if not caller.introspect or caller.is_public:
        raise UnauthorizedClient("this client may not use introspection")
    note(request.scope, client_id=caller.client_id)
    token = require(params, "token")
    access = await read_access_token(ctx, token, endpoint=ENDPOINT)
    if access is None:
        return json_response(INACTIVE, headers=NO_STORE)
    if await ctx.denylist.is_revoked(str(access.jti)):
        count_token_failure(ENDPOINT, "revoked")
        return json_response(INACTIVE, headers=NO_STORE)
    if not visible_to(access.claims, caller.audiences):
        count_token_failure(ENDPOINT, "not_caller_audience")
        return json_response(INACTIVE, headers=NO_STORE)
    audit("token_introspected", client_id=caller.client_id, jti=access.jti)
    return json_response(active_response(access.claims), headers=NO_STORE)
