"""Token revocation (RFC 7009) and the list of recent revocations for resource servers.

A revoked access token's jti is denied: in the database always, and under
`bastion:revoked:jti:{jti}` in Redis when configured, so resource servers learn of it without a
call per request. The list is paged by an opaque cursor (a position `(revoked_at, jti)`, see
`store.revocations.page`): a page used to stop at 10,000 rows and answer `until: now`, so a
poller that fell that far behind moved past the rest and never saw them.
"""

from __future__ import annotations

import base64
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

# Seconds the last page's cursor stays behind now (see revocation_list_endpoint).
SETTLE = 5
_MAX_JTI = 128  # the revoked_tokens.jti column


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
    """`GET /revocations?cursor=C&limit=N`: revoked jtis a validator may still accept, for resource
    servers without Redis, one page at a time.

    A poller follows `cursor` while `more` is true, and keeps the last one for its next poll.
    `since=UNIX` (without a cursor) starts at a time; `until` is kept for pollers that predate the
    cursor (the first revocation time of the next page when `more`, else now).
    """
    ctx: ServerContext = request.app.state.ctx
    after, limit = _list_query(request)
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
    rows = await revocations.page(ctx.database, after, now, limit)
    items = [{"jti": r.jti, "exp": r.exp, "revoked_at": r.revoked_at} for r in rows]
    more = len(rows) == limit
    last = (rows[-1].revoked_at, rows[-1].jti) if rows else after
    # The last page's cursor stops SETTLE seconds back: a revocation recorded at second t may
    # commit a moment later, after a reader passed t; the next poll lists that span again (adding
    # a jti twice is harmless) rather than skip it. Within a run of full pages each page starts
    # exactly after the one before, so the run always advances.
    cursor = last if more else min(last, (now - SETTLE, ""))
    until = rows[-1].revoked_at if more else now
    body = {"revocations": items, "cursor": _encode(cursor), "more": more, "until": until}
    return json_response(body, headers=NO_STORE)


def _list_query(request: Request) -> tuple[tuple[int, str], int]:
    """The position to list after, and the page size, from the query string."""
    query = request.query_params
    for name in ("since", "cursor", "limit"):
        if len(query.getlist(name)) > 1:
            raise InvalidRequest(f"parameter {name} is repeated")
    raw_limit = query.get("limit", str(revocations.PAGE))
    if not _unsigned(raw_limit, 5) or not 1 <= int(raw_limit) <= revocations.PAGE:
        raise InvalidRequest(f"limit must be 1-{revocations.PAGE}")
    cursor = query.get("cursor")
    if cursor is not None:
        if "since" in query:
            raise InvalidRequest("send since or cursor, not both")
        return _decode(cursor), int(raw_limit)
    raw_since = query.get("since", "0")
    if not _unsigned(raw_since, 12):
        raise InvalidRequest("since must be unix seconds")
    return (int(raw_since), ""), int(raw_limit)


def _unsigned(text: str, digits: int) -> bool:
    # ASCII digits only ("²".isdigit() is True but int() refuses it), and no more than the column
    # can hold: a longer number overflowed the database integer (a 500).
    return text.isascii() and text.isdigit() and len(text) <= digits


def _encode(position: tuple[int, str]) -> str:
    """The opaque cursor of a position (revoked_at, jti): clients send it back as it is."""
    return base64.urlsafe_b64encode(f"{position[0]}.{position[1]}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("cursor is malformed") from None
    revoked_at, dot, jti = text.partition(".")
    if not dot or not _unsigned(revoked_at, 12) or len(jti) > _MAX_JTI:
        raise InvalidRequest("cursor is malformed")
    return int(revoked_at), jti
