"""Errors the guard raises, each carrying the RFC 6750 §3.1 error code it is rendered with.

The `description` is sent to the client; the `detail` is for the log only (RFC 6750 §3.1 lets
the server describe the error, but a precise reason such as "bad signature" or "unknown kid"
only helps an attacker tune a forgery, so every token failure shares one public description).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BasicNotAccepted",
    "CredentialNotAccepted",
    "Forbidden",
    "GuardError",
    "InsufficientScope",
    "InvalidApiKey",
    "InvalidRequest",
    "InvalidToken",
    "MissingCredentials",
    "NotFound",
    "UnprotectedRouteError",
]

# S105: a public error message, not a password.
INVALID_TOKEN_DESCRIPTION = "The access token is invalid, expired or revoked."  # noqa: S105


class GuardError(Exception):
    """Base of every authentication or authorization refusal."""

    error: ClassVar[str] = ""
    status_code: ClassVar[int] = 401

    def __init__(self, description: str = "", *, detail: str | None = None) -> None:
        super().__init__(description or detail or self.error)
        self.description = description
        self.detail = detail


class MissingCredentials(GuardError):
    """No credentials at all: RFC 6750 §3.1 says the challenge carries no error code."""

    error = ""
    status_code = 401


class BasicNotAccepted(GuardError):
    """`Authorization: Basic` sent to an API that only takes bearer tokens (or API keys)."""

    error = ""
    status_code = 401


class CredentialNotAccepted(GuardError):
    """A credential of a kind this route does not take (an API key where a user is needed)."""

    error = "invalid_request"
    status_code = 401


class InvalidApiKey(GuardError):
    """An API key that is malformed, unknown, expired or revoked."""

    error = "invalid_api_key"
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__("The API key is invalid, expired or revoked.", detail=detail)


class InvalidRequest(GuardError):
    """RFC 6750 §3.1 invalid_request: e.g. a token sent by more than one method."""

    error = "invalid_request"
    status_code = 400


class InvalidToken(GuardError):
    """RFC 6750 §3.1 invalid_token: malformed, expired, revoked or otherwise invalid."""

    error = "invalid_token"
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(INVALID_TOKEN_DESCRIPTION, detail=detail)


class InsufficientScope(GuardError):
    """RFC 6750 §3.1 insufficient_scope: the token lacks a scope the route needs."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(self, scope: tuple[str, ...], *, detail: str | None = None) -> None:
        super().__init__("The access token does not grant the scope this request needs.", detail=detail)
        self.scope = scope


class Forbidden(GuardError):
    """The caller is authenticated and scoped, but not entitled (RBAC or object policy)."""

    error = "forbidden"
    status_code = 403

    def __init__(self, detail: str | None = None) -> None:
        super().__init__("You are not allowed to perform this operation.", detail=detail)


class NotFound(GuardError):
    """An object the caller may not see: answered like a missing one (no BOLA oracle)."""

    error = "not_found"
    status_code = 404

    def __init__(self, detail: str | None = None) -> None:
        super().__init__("Not found.", detail=detail)


class UnprotectedRouteError(RuntimeError):
    """Raised at start-up when a route declares no requirement and is not marked public."""
