"""Token introspection (RFC 7662) for resource servers registered with `--introspect`.

RFC 7662 §4: anything the caller may not know about (invalid, expired, revoked, unknown, or
outside the caller's audiences) is `{"active": false}` with no reason.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.protocol.errors import UnauthorizedClient
from bastion.protocol.rfc6749.params import check_content_type, parse_form, require
from bastion.server.audit import audit
from bastion.server.checks.client_auth import authenticate_client
from bastion.server.context import ServerContext
from bastion.server.responses import NO_STORE, json_response, read_body
from bastion.server.tokens import read_access_token

INACTIVE = {"active": False}


async def introspection_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    check_content_type(request.headers.get("content-type"))
    params = parse_form(await read_body(request))
    source = request.client.host if request.client else "unknown"
    caller = await authenticate_client(ctx, request.headers.get("authorization"), params, source, request.url.path)
    if not caller.introspect or caller.is_public:
        raise UnauthorizedClient("this client may not use introspection")
    token = require(params, "token")
    claims = await read_access_token(ctx, token)
    if claims is None or await ctx.is_revoked(str(claims["jti"])):
        return json_response(INACTIVE, headers=NO_STORE)
    if caller.audiences and claims.get("aud") not in caller.audiences:
        return json_response(INACTIVE, headers=NO_STORE)
    audit("token_introspected", client_id=caller.client_id, jti=claims["jti"])
    body = {"active": True, "token_type": "Bearer", **{k: v for k, v in claims.items() if k in _SHOWN}}
    return json_response(body, headers=NO_STORE)


_SHOWN = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "roles"})
