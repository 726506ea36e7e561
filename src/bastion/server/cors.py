"""CORS for the endpoints a single-page app calls from its own origin.

Only the token, userinfo, revocation, JWKS and discovery endpoints answer CORS, and only for the
web origins of the registered redirect URIs of public clients. Never the authorization endpoint
or the pages: those are navigations, and cross-origin reads of them would only help attackers.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.protocol.rfc7591 import is_valid_redirect_uri
from bastion.store import clients

CORS_PATHS = frozenset(
    {
        "/token",
        "/userinfo",
        "/revoke",
        "/jwks",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    }
)
ALLOWED_HEADERS = "authorization, content-type, dpop"
MAX_AGE = "600"


def origin_of(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()


class CORSMiddleware:
    """Answers preflights and adds `Access-Control-Allow-Origin` for allowed origins only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._origins: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    async def _allowed(self, scope: Scope) -> frozenset[str]:
        ctx = scope["app"].state.ctx
        cache = max(ctx.settings.client_cache_seconds, 0.0)
        if time.monotonic() - self._loaded_at >= cache:
            # Only URIs that pass the registration rule: a stored http://public-host from before
            # it must not become a CORS origin either.
            stored = await clients.public_redirect_uris(ctx.database)
            origins = {origin_of(uri) for uri in stored if is_valid_redirect_uri(uri)}
            self._origins = frozenset(o for o in origins if o is not None)
            self._loaded_at = time.monotonic()
        return self._origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in CORS_PATHS:
            await self.app(scope, receive, send)
            return
        origin = None
        for name, value in scope["headers"]:  # the first Origin header (a loop: no generator per request)
            if name == b"origin":
                origin = value.decode("latin-1")
                break
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin.lower() in await self._allowed(scope)
        if scope["method"] == "OPTIONS" and Headers(scope=scope).get("access-control-request-method"):
            headers = {"vary": "Origin"}
            if allowed:
                headers.update(
                    {
                        "access-control-allow-origin": origin,
                        "access-control-allow-methods": "GET, POST",
                        "access-control-allow-headers": ALLOWED_HEADERS,
                        "access-control-max-age": MAX_AGE,
                    }
                )
            await Response(status_code=204 if allowed else 403, headers=headers)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if allowed:
                    extra += [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-expose-headers", b"www-authenticate"),
                    ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)
