"""The token endpoint (RFC 6749 §3.2): a visible pipeline of checks, then the grant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.protocol.errors import InvalidRequest, OAuthError, UnauthorizedClient, UnsupportedGrantType
from bastion.protocol.rfc6749.params import check_content_type, parse_form, single
from bastion.ratelimit import Decision, rate_limit_headers
from bastion.ratelimit.middleware import DECISIONS_KEY
from bastion.server.access_log import note
from bastion.server.checks.client_auth import authenticate_client
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.grants.authorization_code import authorization_code_grant
from bastion.server.grants.client_credentials import client_credentials_grant
from bastion.server.grants.device_code import device_code_grant
from bastion.server.grants.refresh_token import refresh_token_grant
from bastion.server.limits import RateLimited
from bastion.server.metrics import count_grant
from bastion.server.responses import logged_error_response, rate_limited_json, receive_body, send_no_store_json

Grant = Callable[[ServerContext, Client, dict[str, list[str]]], Awaitable[dict[str, Any]]]

GRANTS: dict[str, Grant] = {
    "client_credentials": client_credentials_grant,
    "authorization_code": authorization_code_grant,
    "refresh_token": refresh_token_grant,
    "urn:ietf:params:oauth:grant-type:device_code": device_code_grant,
}

# Grants refused by design, with the grant to use instead.
REFUSED_GRANTS = {
    "password": (
        "the resource owner password credentials grant is not supported (RFC 9700 §2.4); "
        "use authorization_code with PKCE for users, or client_credentials for machines"
    ),
}

# RFC 8707 §2: `resource` may be repeated; nothing else may (RFC 6749 §3.2).
REPEATABLE = frozenset({"resource"})


def select_grant(params: dict[str, list[str]]) -> tuple[str, Grant]:
    grant_type = single(params, "grant_type")
    if grant_type is None:
        raise InvalidRequest("parameter grant_type is required")
    if grant_type in REFUSED_GRANTS:
        raise UnsupportedGrantType(REFUSED_GRANTS[grant_type])
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(f"grant_type {grant_type} is not supported")
    return grant_type, grant


def check_grant_allowed(client: Client, grant_type: str) -> None:
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"this client may not use the {grant_type} grant")


class TokenEndpoint:
    """POST /token as a plain ASGI app: the checks in order, then the grant, answered as the
    OAuthError and RateLimited handlers answer (RFC 6749 §5.1, §5.2), without a Request object.

    The router serves it at /token; `TokenRouteMiddleware` calls it before the router.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = authorization = declared = None
        # The first of each header (ASGI header names are lowercase); RequestContextMiddleware has
        # refused a second Authorization, Content-Type or Content-Length already.
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = content_type if content_type is not None else value.decode("latin-1")
            elif name == b"authorization":
                authorization = authorization if authorization is not None else value.decode("latin-1")
            elif name == b"content-length":
                declared = declared if declared is not None else value.decode("latin-1")
        grant_type = "none"  # the metric's label until a grant we serve is named
        admitted: list[Decision] = []  # client_id-keyed policies: their RateLimit fields on the 200
        try:
            ctx: ServerContext = scope["app"].state.ctx
            check_content_type(content_type)
            params = parse_form(await receive_body(receive, declared), repeatable=REPEATABLE)
            grant_type, grant = select_grant(params)
            client_address = scope.get("client")
            source = client_address[0] if client_address else "unknown"
            client = await authenticate_client(ctx, authorization, params, source, scope["path"], admitted)
            note(scope, client_id=client.client_id)
            check_grant_allowed(client, grant_type)
            body = await grant(ctx, client, params)
        except OAuthError as exc:
            count_grant(grant_type, exc.error)
            await logged_error_response(exc)(scope, receive, send)
            return
        except RateLimited as exc:
            count_grant(grant_type, "rate_limited")
            await rate_limited_json(exc)(scope, receive, send)
            return
        count_grant(grant_type, "issued")
        await send_no_store_json(send, body, _rate_limit_fields(scope, admitted))


def _rate_limit_fields(scope: Scope, admitted: list[Decision]) -> list[tuple[str, str]]:
    """The `RateLimit` fields of the client's policies for a 200, each field once: when the
    route-policy middleware counted this request too, it renders all decisions together."""
    shared: list[Decision] | None = scope.get(DECISIONS_KEY)
    if shared is not None:
        shared.extend(admitted)
        return []
    return rate_limit_headers(admitted) if admitted else []


token_endpoint = TokenEndpoint()


class TokenRouteMiddleware:
    """Serves POST /token with `token_endpoint` in front of the router (the innermost user
    middleware, so request context, CORS and rate limiting wrap it as they wrap every route).

    A fast twin of routing that earns its place: `bench/token_bench.py --fast-path` measured
    1.08x-1.18x less CPU per client_credentials grant in process than the same endpoint reached
    through the router; `test_fast_path_answers_as_the_router` holds the answers equal.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # With a root_path the router strips it before matching; that rare case keeps the router.
        if (
            scope["type"] == "http"
            and scope["path"] == "/token"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await token_endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)
