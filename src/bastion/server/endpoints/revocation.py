"""Token revocation (RFC 7009) and the list of recent revocations for resource servers.

A revoked access token's jti is denied until its exp: in the database always, and under
`bastion:revoked:jti:{jti}` in Redis when configured, so resource servers learn of it without a
call per request.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from bastion.events import audit
from bastion.protocol.errors import InvalidClient, InvalidRequest, UnauthorizedClient
from bastion.protocol.rfc6749.params import check_content_type, parse_form, require, single
from bastion.protocol.rfc7009 import check_token_owner, check_token_type_hint
from bastion.server.checks.client_auth import authenticate_client
from bastion.server.context import ServerContext
from bastion.server.grants.refresh_token import revoke_refresh_token
from bastion.server.responses import NO_STORE, json_response, read_body
from bastion.server.tokens import read_access_token
from bastion.store import revocations


async def revocation_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    check_content_type(request.headers.get("content-type"))
    params = parse_form(await read_body(request))
    source = request.client.host if request.client else "unknown"
    client = await authenticate_client(ctx, request.headers.get("authorization"), params, source, request.url.path)
    token = require(params, "token")
    check_token_type_hint(single(params, "token_type_hint"))
    access = await read_access_token(ctx, token)
    # RFC 7009 §2.2: an invalid or unknown token is not an error; answer 200 either way.
    if access is not None:
        check_token_owner(access.client_id, client.client_id)
        await ctx.denylist.revoke(str(access.jti), client.client_id, access.expires_at)
        audit("token_revoked", client_id=client.client_id, jti=access.jti)
    else:
        await revoke_refresh_token(ctx, client, token)
    return Response(status_code=200, headers=NO_STORE)


async def revocation_list_endpoint(request: Request) -> Response:
    """`GET /revocations?since=UNIX`: revoked, unexpired jtis for resource servers without Redis."""
    ctx: ServerContext = request.app.state.ctx
    query = request.query_params
    if len(query.getlist("since")) > 1:
        raise InvalidRequest("parameter since is repeated")
    raw_since = query.get("since", "0")
    # ASCII digits only ("²".isdigit() is True but int() refuses it), and no more than a unix
    # time can have: a longer number overflowed the database integer (a 500).
    if not (raw_since.isascii() and raw_since.isdigit()) or len(raw_since) > 12:
        raise InvalidRequest("since must be unix seconds")
    source = request.client.host if request.client else "unknown"
    authorization = request.headers.get("authorization")
    if authorization is None:
        # A GET has no form body: Basic is the only way to authenticate here (RFC 6749 §2.3.1).
        raise InvalidClient("client authentication is required", used_basic=True)
    caller = await authenticate_client(ctx, authorization, {}, source, request.url.path)
    # A resource server bound to no audience (a row from before --introspect required one)
    # reads nothing here either, as introspection tells it nothing (RFC 7662 §4).
    if not caller.introspect or caller.is_public or not caller.audiences:
        raise UnauthorizedClient("this client may not read revocations")
    now = int(time.time())
    rows = await revocations.since(ctx.database, int(raw_since), now)
    items = [{"jti": r.jti, "exp": r.exp, "revoked_at": r.revoked_at} for r in rows]
    return json_response({"revocations": items, "until": now}, headers=NO_STORE)
