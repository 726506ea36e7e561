"""Rendering: JSON bodies, the RFC 6749 §5.2 error body, and the request context middleware."""

from __future__ import annotations

import json
import secrets
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.protocol.errors import InvalidClient, OAuthError
from bastion.server.audit import bind_request

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
MAX_BODY = 64 * 1024


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":")).encode()
    return Response(content, status, headers=headers, media_type="application/json")


def error_response(exc: OAuthError) -> Response:
    """RFC 6749 §5.2: a JSON body with `error` and, when useful, `error_description`."""
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient) and exc.used_basic:
        # RFC 6749 §5.2: a 401 for a client that used Basic MUST carry WWW-Authenticate.
        headers["www-authenticate"] = 'Basic realm="bastion", charset="UTF-8"'
    return json_response(body, exc.status_code, headers)


async def oauth_error_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, OAuthError):  # pragma: no cover - registered for OAuthError only
        raise exc
    if exc.detail:
        structlog.get_logger("bastion").info("oauth_error", error=exc.error, detail=exc.detail)
    return error_response(exc)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    from bastion.protocol.errors import InvalidRequest

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"request body larger than {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise InvalidRequest(f"request body larger than {limit} bytes")
    return body


class RequestContextMiddleware:
    """Request id, source address and a last-resort `server_error` (never a stack trace)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        client = scope.get("client")
        bind_request(request_id, client[0] if client else None)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            structlog.get_logger("bastion").exception("unhandled_error", path=scope.get("path"))
            if not started:
                response = json_response({"error": "server_error"}, 500, dict(NO_STORE))
                await response(scope, receive, send_with_id)
