"""Security events as structured JSON lines (structlog).

Tokens and secrets never appear: a jti or a short hash prefix does.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import Any

import structlog

_configured = False


def configure_logging(level: str = "info") -> None:
    global _configured
    if _configured:
        return
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
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


def fingerprint(value: str) -> str:
    """A short, non-reversible reference to a secret value for logs."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def audit(event: str, **fields: Any) -> None:
    """Write one security event; request id and source come from the request context."""
    structlog.get_logger("bastion.audit").info(event, audit=True, **fields)


log = structlog.get_logger("bastion")
