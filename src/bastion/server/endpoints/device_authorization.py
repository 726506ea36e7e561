"""The device authorization endpoint (RFC 8628 §3.1, §3.2).

A device (a TV, a CLI) asks for a pair of codes: the device code it will poll the token endpoint
with (256 bits, stored only as a hash) and the user code a person types at `verification_uri`.
The client authenticates as at the token endpoint (public clients send just `client_id`), must
be registered for the device grant, and the codes are bound to it (§3.4).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.events import audit
from bastion.protocol.errors import ServerError, UnauthorizedClient
from bastion.protocol.rfc6749.params import check_content_type, parse_form, single
from bastion.protocol.rfc6749.scope import parse_scope, resolve_scope
from bastion.protocol.rfc8628 import (
    GRANT_TYPE,
    format_user_code,
    generate_device_code,
    generate_user_code,
)
from bastion.server.checks.client_auth import authenticate_client
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import token_hash
from bastion.server.limits import RateLimited
from bastion.server.responses import NO_STORE, json_response, read_body
from bastion.store import device_codes
from bastion.store.device_codes import DeviceCodeRow

VERIFICATION_PATH = "/device"
# Expired rows are kept this long so a late poll still gets expired_token (RFC 8628 §3.5).
EXPIRED_RETENTION = 3600
# A fresh user code collides with a live one with odds of (live codes) / 20^8; a few retries
# make a failure practically impossible without ever reusing a code.
_USER_CODE_ATTEMPTS = 5


def check_device_grant_allowed(client: Client) -> None:
    """RFC 8628 §3.1: only clients registered for the device grant may start one."""
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient(f"this client may not use the {GRANT_TYPE} grant")


async def _store_codes(ctx: ServerContext, client: Client, scope: tuple[str, ...]) -> tuple[str, DeviceCodeRow]:
    device_code = generate_device_code()
    now = int(time.time())
    for _attempt in range(_USER_CODE_ATTEMPTS):
        row = device_codes.pending(
            token_hash(device_code),
            generate_user_code(),
            client.client_id,
            " ".join(scope),
            now=now,
            lifetime=ctx.settings.device_code_lifetime,
            interval=ctx.settings.device_poll_interval,
        )
        if await device_codes.start(ctx.database, row, purge_before=now - EXPIRED_RETENTION):
            return device_code, row
    raise ServerError(detail="no free user code after several attempts")


def device_authorization_response(ctx: ServerContext, device_code: str, row: DeviceCodeRow) -> dict[str, Any]:
    """RFC 8628 §3.2: the codes, where to go, how long they live and how often to poll."""
    user_code = format_user_code(row.user_code)
    verification_uri = ctx.endpoint(VERIFICATION_PATH)
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?user_code={user_code}",
        "expires_in": row.expires_at - row.created_at,
        "interval": row.interval,
    }


async def device_authorization_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    check_content_type(request.headers.get("content-type"))
    params = parse_form(await read_body(request))
    source = request.client.host if request.client else "unknown"
    client = await authenticate_client(ctx, request.headers.get("authorization"), params, source, request.url.path)
    check_device_grant_allowed(client)
    scope = resolve_scope(parse_scope(single(params, "scope")), client.scopes)
    if client.is_public:
        # A public client's id is no credential: anyone may start device codes with it, so what
        # they store is limited per address.
        refusal = await ctx.limits.admit_anonymous(source)
        if refusal is not None:
            raise RateLimited([refusal])
    device_code, row = await _store_codes(ctx, client, scope)
    audit("device_authorization_started", client_id=client.client_id, scope=row.scope, expires_at=row.expires_at)
    return json_response(device_authorization_response(ctx, device_code, row), headers=NO_STORE)
