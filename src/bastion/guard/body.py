"""Request body size and JSON nesting limits, enforced before the application parses anything.

A 413 when the body exceeds `max_bytes` (by Content-Length, or while reading a chunked body),
and a 422 when a JSON body nests deeper than `max_depth` (deep nesting is a cheap way to burn
parser CPU and recursion, ASVS 16 / security catalogue A19).

A 400 when a header these limits read (Content-Type, Content-Length, Transfer-Encoding) comes
twice: this middleware and the framework behind it must read the same value, and they do not
agree on which of two (a dict of the headers keeps the last, Starlette's `headers.get` the
first), so two Content-Types let a JSON body past the depth limit as "text/plain".
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.guard._asgi import replaying

__all__ = ["BodyLimitMiddleware", "DuplicateHeader", "json_depth", "single_headers"]

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text (strings are skipped)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


async def _refuse(send: Send, status: int, error: str, description: str) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Lower-case name -> the name a refusal shows.
_SINGLE = {
    b"content-type": "Content-Type",
    b"content-length": "Content-Length",
    b"transfer-encoding": "Transfer-Encoding",
}


class DuplicateHeader(ValueError):
    """A header that must come at most once came twice."""


def single_headers(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The headers of `_SINGLE` present, by lower-case name (ASGI servers should lowercase names
    but need not).

    Raises:
        DuplicateHeader: one came twice; its message is the header's name.
    """
    found: dict[bytes, bytes] = {}
    for name, value in raw:
        lowered = name.lower()
        if lowered in _SINGLE:
            if lowered in found:
                raise DuplicateHeader(_SINGLE[lowered])
            found[lowered] = value
    return found


class BodyLimitMiddleware:
    """ASGI middleware: bounded request bodies and bounded JSON depth."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = 64 * 1024, max_depth: int = 32) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            headers = single_headers(scope["headers"])
        except DuplicateHeader as duplicate:
            await _refuse(send, 400, "invalid_request", f"Send one {duplicate} header.")
            return
        length = headers.get(b"content-length")
        too_large = f"The request body exceeds {self.max_bytes} bytes."
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(send, 413, "request_too_large", too_large)
            return
        if length is None and b"chunked" not in headers.get(b"transfer-encoding", b""):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, "request_too_large", too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        # No content type counts: frameworks (FastAPI among them) parse such bodies as JSON.
        is_json = content_type.endswith(b"json") or not content_type
        if is_json and json_depth(body) > self.max_depth:
            await _refuse(
                send,
                422,
                "invalid_request",
                f"The JSON body is nested deeper than {self.max_depth} levels.",
            )
            return
        await self.app(scope, replaying({"type": "http.request", "body": body, "more_body": False}, receive), send)
