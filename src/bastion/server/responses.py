"""Rendering: JSON bodies, the RFC 6749 §5.2 error body, and the request context middleware."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.events import bind_source, compact_json
from bastion.protocol.errors import InvalidClient, InvalidRequest, OAuthError
from bastion.protocol.rfc6749.params import parse_query
from bastion.server.limits import RateLimited, rate_limited_response
from bastion.store import DatabaseUnavailable

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
MAX_BODY = 64 * 1024
# What `json.dumps(body, separators=(",", ":"))` writes, without building an encoder per call.
_ENCODE = compact_json()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_ENCODE(body).encode(), status, headers=headers, media_type="application/json")


# The headers `json_response(body, headers=NO_STORE)` sends, in Starlette's order, but the length.
_NO_STORE_JSON_HEAD = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))
_JSON_TYPE = (b"content-type", b"application/json")


async def send_no_store_json(send: Send, body: Any, extra: Iterable[tuple[str, str]] = ()) -> None:
    """Send what `json_response(body, headers=NO_STORE)` sends, as its two ASGI messages.

    A fast twin for the token endpoint's success answer that earns its place: building and
    sending a Starlette Response cost 24,000 instructions more per client_credentials grant
    (3.3% of the grant, in process under callgrind); `test_no_store_json_is_json_response` holds
    the two messages equal.
    """
    content = _ENCODE(body).encode()
    headers = [*_NO_STORE_JSON_HEAD, (b"content-length", str(len(content)).encode()), _JSON_TYPE]
    headers += [(name.lower().encode(), value.encode()) for name, value in extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})


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


def logged_error_response(exc: OAuthError) -> Response:
    """The error's response, after logging its private detail (the handler of every OAuthError)."""
    if exc.detail:
        structlog.get_logger("bastion").info("oauth_error", error=exc.error, detail=exc.detail)
    return error_response(exc)


async def oauth_error_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, OAuthError):  # pragma: no cover - registered for OAuthError only
        raise exc
    return logged_error_response(exc)


def rate_limited_json(exc: RateLimited) -> Response:
    """The limiter's 429 for a refusal raised inside an endpoint, never cached."""
    status, headers, body = rate_limited_response(exc)
    response = Response(body, status, media_type="application/json")
    for name, value in headers:
        response.headers.append(name, value)
    response.headers["cache-control"] = "no-store"
    return response


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request's body, refused past `limit` bytes (declared or sent)."""
    return await receive_body(request.receive, request.headers.get("content-length"), limit)


async def receive_body(receive: Receive, declared: str | None, limit: int = MAX_BODY) -> bytes:
    """The body from ASGI `receive`, refused past `limit` bytes (RFC 9110 §15.5.14 would be 413; an
    OAuth endpoint answers `invalid_request`). `declared` is the first Content-Length header."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"request body larger than {limit} bytes")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            body += chunk
            if len(body) > limit:
                raise InvalidRequest(f"request body larger than {limit} bytes")
            if not message.get("more_body", False):
                return body
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


# An outage of a dependency is answered "try again" (RFC 9110 §15.6.4 503 with Retry-After,
# RFC 6749 §4.1.2.1's `temporarily_unavailable`), never as a server error.
RETRY_AFTER_SECONDS: Final = 2
_UNAVAILABLE_BODY = {
    "error": "temporarily_unavailable",
    "error_description": "the service is temporarily unavailable; retry in a few seconds",
}
_OUTAGE_LOG_EVERY: Final = 10.0  # seconds between log lines per dependency during an outage


def unavailable_dependency(exc: BaseException) -> str | None:
    """The dependency whose outage `exc` reports ("database", "redis"), or None for anything else."""
    if isinstance(exc, DatabaseUnavailable):
        return "database"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "redis"
    return None


def unavailable_response() -> Response:
    return json_response(_UNAVAILABLE_BODY, 503, {**NO_STORE, "retry-after": str(RETRY_AFTER_SECONDS)})


class _OutageLog:
    """One warning per dependency per interval, with the count in between: an outage fails every
    request, and a line each would make the log a second outage."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def note(self, dependency: str, exc: BaseException, path: str | None) -> None:
        logged_at, missed = self._last.get(dependency, (-_OUTAGE_LOG_EVERY, 0))
        now = time.monotonic()
        if now - logged_at < _OUTAGE_LOG_EVERY:
            self._last[dependency] = (logged_at, missed + 1)
            return
        self._last[dependency] = (now, 0)
        structlog.get_logger("bastion").warning(
            "dependency_unavailable", dependency=dependency, error=f"{type(exc).__name__}: {exc}",
            path=path, unlogged_since_last=missed,
        )


# Headers an endpoint reads as one value. A proxy and the server (or two readers in the server)
# that picked different copies would judge different requests, so a second copy is refused.
# (Cookie is not here: HTTP/2 may split it into several fields.)
_SINGLE_HEADERS: dict[bytes, str] = {
    b"authorization": "Authorization",
    b"content-type": "Content-Type",
    b"content-length": "Content-Length",
    b"transfer-encoding": "Transfer-Encoding",
}


def _duplicate_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The name of a header in `_SINGLE_HEADERS` sent more than once, or None."""
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in _SINGLE_HEADERS:
            if name in seen:
                return _SINGLE_HEADERS[name]
            seen.add(name)
    return None


class RequestContextMiddleware:
    """The source address for log lines, the one check of every query string and of headers that
    must come once (Authorization, Content-Type, Content-Length, Transfer-Encoding), a 503 with
    Retry-After for an outage of the database or Redis, and a last-resort `server_error` (never a
    stack trace).

    Every query string is read here once as `parse_query` reads it (UTF-8 percent-encodings, no
    control characters) and refused with `invalid_request` otherwise, so no endpoint, page or
    mounted app can hand a NUL or an invalid byte to the database, whichever reader it uses.
    Bodies are `parse_form`'s, which applies the same rules. The request id is the guard's
    `RequestIdMiddleware`, which wraps this one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._outages = _OutageLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        bind_source(client[0] if client else None)
        duplicate = _duplicate_header(scope["headers"])
        if duplicate is not None:
            exc = InvalidRequest(f"send one {duplicate} header")
            await logged_error_response(exc)(scope, receive, send)
            return
        if scope.get("query_string"):
            try:
                parse_query(scope["query_string"])
            except InvalidRequest as exc:
                await logged_error_response(exc)(scope, receive, send)
                return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is not None:
                self._outages.note(dependency, exc, scope.get("path"))
                response = unavailable_response()
            else:
                structlog.get_logger("bastion").exception("unhandled_error", path=scope.get("path"))
                response = json_response({"error": "server_error"}, 500, dict(NO_STORE))
            if not started:
                await response(scope, receive, send)
