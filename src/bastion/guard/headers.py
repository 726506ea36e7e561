"""Security headers on every response, including the guard's own refusals (OWASP ASVS 3.4).

An API answers JSON, so the strictest browser policy costs nothing: nothing may be framed,
sniffed, loaded or sent as a referrer, and responses carrying personal data are not cached.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.guard._asgi import adding_headers

__all__ = ["SECURITY_HEADERS", "SecurityHeadersMiddleware"]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class SecurityHeadersMiddleware:
    """ASGI middleware adding SECURITY_HEADERS (and HSTS over https) unless already set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [*SECURITY_HEADERS, _HSTS] if scope.get("scheme") == "https" else SECURITY_HEADERS
        await self.app(scope, receive, adding_headers(send, extra))
