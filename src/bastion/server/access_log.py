"""The access log: one JSON line per HTTP request, opt-in (`access_log`: off, stdout or a file).

Separate from the security events (`bastion.events`, on stderr): this says what was asked and
answered, for traffic analysis, and never what was sent. The path is logged without its query
string (authorization requests and some clients put codes and tokens there), and no header is
logged at all. A line names the client (`client_id`) or the person (`sub`) when an endpoint
learned it (`note`).

Each line is one `write` on a descriptor opened with O_APPEND, so the lines of several workers
sharing a file never interleave.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.events import compact_json
from bastion.server.metrics import RouteNames

_ENCODE: Final = compact_json()
NOTED: Final = ("client_id", "sub")
# A path longer than this is cut (and marked `path_truncated`): a flood of huge URLs must not
# make the log grow by their size.
MAX_PATH: Final = 2048
# Seconds between two warnings that the access log cannot be written.
_WARN_EVERY: Final = 60.0


def note(scope: Scope, **fields: str | None) -> None:
    """Tell the access log who the request was from (`client_id`, `sub`), once an endpoint knows."""
    state = scope.setdefault("state", {})
    for name, value in fields.items():
        if value is not None:
            state[name] = value


def open_access_log(target: str) -> int:
    """The descriptor lines are written to: stdout, or `target` opened for appending (0600)."""
    if target == "stdout":
        return 1
    return os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


class AccessLogMiddleware:
    """Writes one JSON line per HTTP request when its response has been sent."""

    def __init__(self, app: ASGIApp, *, target: str, routes: RouteNames) -> None:
        self.app = app
        self.routes = routes
        self.fd = open_access_log(target)
        self.lost = 0  # lines that could not be written
        self._warned_at = -_WARN_EVERY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._write(scope, status, time.perf_counter() - started)

    def _write(self, scope: Scope, status: int, seconds: float) -> None:
        state = scope.get("state") or {}
        client = scope.get("client")
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": state.get("request_id"),
            "method": scope["method"],
            "route": self.routes(scope["path"]),
            "path": scope["path"][:MAX_PATH],  # the query string is never logged
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client[0] if client else None,
        }
        if len(scope["path"]) > MAX_PATH:
            line["path_truncated"] = True
        for name in NOTED:
            if name in state:
                line[name] = state[name]
        try:
            os.write(self.fd, (_ENCODE(line) + "\n").encode("utf-8"))
        except OSError as exc:
            # A full disk or a closed pipe loses the line, never the request (already answered).
            self.lost += 1
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                structlog.get_logger("bastion").warning(
                    "access_log_write_failed", error=f"{type(exc).__name__}: {exc}", lines_lost=self.lost
                )
