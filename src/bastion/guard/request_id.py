"""One id per request, shared by the response, the audit trail and every log line (X-Request-ID).

A caller's `X-Request-ID` is believed only from a trusted proxy (one that sets the header on
every request it forwards) and only when short and plain, so nobody can pick ids that confuse the
audit trail or inject into log lines; otherwise an id is made here. The id goes where the
guard's audit reads it (`request_id_of(scope)`), into a context variable for log and audit code
that has no scope (`current_request_id()`), and back on the response.

Nested (an app using this middleware mounted inside another that does, as the server mounts the
example API in development mode) the outer id is kept: one id and one header per response.

Put it outside any middleware that rewrites `scope["client"]` from `X-Forwarded-For` (uvicorn's
`--proxy-headers`): the trust decision is about the peer that connected, not the client the
proxy names.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestIdMiddleware", "TrustedPeers", "current_request_id", "request_id_of"]

HEADER = b"x-request-id"
# Short and plain: nothing a log line or a JSON document would need to escape.
_ACCEPTABLE = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_CURRENT: ContextVar[str | None] = ContextVar("bastion_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs for (None outside a request)."""
    return _CURRENT.get()


def request_id_of(scope: Mapping[str, Any]) -> str | None:
    """The id `RequestIdMiddleware` gave the request of this ASGI scope (None without one)."""
    state = scope.get("state")
    return state.get("request_id") if state else None


class TrustedPeers:
    """Peer addresses whose `X-Request-ID` is believed: IP addresses, networks, or `*` for any.

    Raises:
        ValueError: an entry is neither an address, a network nor `*`.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        entries = tuple(entries)
        self.any = "*" in entries
        self.networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")

    def __bool__(self) -> bool:
        """Whether any peer at all may be trusted."""
        return self.any or bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if self.any:
            return True
        if not self.networks or not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False  # a Unix socket path or a name: not a peer we can trust
        return any(address in network for network in self.networks)


class RequestIdMiddleware:
    """Gives every HTTP request one id: a trusted proxy's well-formed `X-Request-ID`, or a new one.

    Args:
        app: the wrapped application.
        trusted_proxies: peer addresses or networks whose `X-Request-ID` is kept (default: none,
            every id is made here).
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted_proxies = TrustedPeers(trusted_proxies)
        self._believes = bool(self.trusted_proxies)  # else no header is read at all

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if "request_id" in state:
            # An outer RequestIdMiddleware named this request and answers the header.
            await self.app(scope, receive, send)
            return
        given = self._given(scope) if self._believes else None
        request_id = given or secrets.token_hex(8)
        state["request_id"] = request_id
        token = _CURRENT.set(request_id)
        try:
            await self.app(scope, receive, _with_header(send, request_id.encode()))
        finally:
            _CURRENT.reset(token)

    def _given(self, scope: Scope) -> str | None:
        """The connecting proxy's `X-Request-ID`, when the proxy is trusted and the id plain."""
        client = scope.get("client")
        if not client or client[0] not in self.trusted_proxies:
            return None
        # Two ids are no id: which one a reader takes differs (first or last), and the audit
        # trail must not name a request by a value some other log line does not.
        given: list[bytes] = [value for name, value in scope["headers"] if name.lower() == HEADER]
        if len(given) != 1 or _ACCEPTABLE.fullmatch(given[0]) is None:
            return None
        return given[0].decode("ascii")


def _with_header(send: Send, request_id: bytes) -> Send:
    """`send`, adding `X-Request-ID` to the response unless the application set its own (on every
    response: one lookup of a lower-case name instead of `adding_headers`' general merge)."""

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            for name, _ in headers:
                if name == HEADER:
                    break
            else:
                message["headers"] = [*headers, (HEADER, request_id)]
        await send(message)

    return send_with_id
