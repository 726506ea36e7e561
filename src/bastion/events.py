"""Security events as structured JSON lines, and the request context every log line carries.

The server, the key lifecycle and the CLI write their events here (the guard keeps its own
hash-chained trail, `bastion.guard.audit`); a serving process also queues each event for its
hash-chained trail in the database (`bastion.server.audit_trail`, `set_trail`). Audit events
are on the token endpoint's hot path (two per grant), so they are written directly as one JSON
line each instead of through structlog's processor chain; other log lines go through structlog
and carry the same request id and source address. The request id is the guard's
(`bastion.guard.RequestIdMiddleware`), so the server's lines, the response header and the audit
entries of a guard-protected app mounted in the server all name a request alike. Tokens and
secrets never appear: a jti or a short hash prefix does.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from bastion.guard.request_id import current_request_id

_configured = False


def compact_json(default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """A function returning `json.dumps(obj, separators=(",", ":"), default=default)`, character
    for character, for the acyclic dicts of the hot path.

    `json.dumps` with any non-default argument builds a JSONEncoder per call, and that builds its
    C encoder per call; here the C encoder (when the interpreter has it) is built once. It skips
    only the circular-reference check (a cycle would end in RecursionError, not ValueError).
    """
    encoder = json.JSONEncoder(separators=(",", ":"), default=default)
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # pragma: no cover - CPython ships the C accelerator
        return encoder.encode
    # The positional arguments of JSONEncoder.iterencode's own c_make_encoder call, in its order.
    iterencode = make_encoder(
        None,  # markers: no circular-reference check
        encoder.default,
        json.encoder.encode_basestring_ascii,  # ensure_ascii=True
        None,  # indent
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )

    def encode(obj: Any) -> str:
        return "".join(iterencode(obj, 0))

    return encode


# `json.dumps(record, separators=(",", ":"), default=str)`.
_ENCODE = compact_json(default=str)
_SOURCE: ContextVar[str | None] = ContextVar("bastion_source", default=None)


def bind_source(source: str | None) -> None:
    """Set the source address of the current task's request (one task per ASGI request)."""
    _SOURCE.set(source)


def request_context() -> dict[str, Any]:
    """The request id and source address every line of a request carries (nothing outside one)."""
    request_id = current_request_id()
    if request_id is None:
        return {}
    return {"request_id": request_id, "source": _SOURCE.get()}


def _merge_request(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key, value in request_context().items():
        event_dict.setdefault(key, value)
    return event_dict


def configure_logging(level: str = "info") -> None:
    global _configured
    if _configured:
        return
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    # The demo's discovery and JWKS fetches are not security events; keep them out of the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            _merge_request,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True


Trail = Callable[[dict[str, Any]], None]
_trail: Trail | None = None
# Events on stderr only, never in the trail: routine successes that a later event of the same
# request already names (a client's successful authentication precedes its grant's
# `token_issued`, its introspection, its revocation).
ROUTINE = frozenset({"client_authenticated"})


def set_trail(trail: Trail | None, *, only_if: Trail | None = None) -> None:
    """Send every audit event of this process to `trail` as well (the server's database trail,
    `bastion.server.audit_trail`), or to none. With `only_if`, only while that one is set."""
    global _trail
    if only_if is None or _trail == only_if:
        _trail = trail


def audit(event: str, **fields: Any) -> None:
    """Write one security event as a JSON line on stderr, with the request id and source, and
    queue it for the database trail when the process has one."""
    record = {"audit": True, **fields, "event": event, **request_context(), "level": "info"}
    record["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    sys.stderr.write(_ENCODE(record) + "\n")
    if _trail is not None and event not in ROUTINE:
        _trail(record)


log = structlog.get_logger("bastion")
