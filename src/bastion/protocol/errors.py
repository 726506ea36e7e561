"""The OAuth error hierarchy (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 8707 §2).

Each error carries a public `description` (sent to the client) and a private `detail` (logged,
never sent). One renderer in the server turns any of them into a response.
"""

from __future__ import annotations

from typing import ClassVar


class OAuthError(Exception):
    """Base of every protocol error; anything unexpected becomes a bare `server_error`."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 500

    def __init__(self, description: str = "", *, detail: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.detail = detail


class InvalidRequest(OAuthError):
    error = "invalid_request"
    status_code = 400


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed (401; `WWW-Authenticate` when Basic was used)."""

    error = "invalid_client"
    status_code = 401

    def __init__(self, description: str = "", *, detail: str | None = None, used_basic: bool = False) -> None:
        super().__init__(description, detail=detail)
        self.used_basic = used_basic


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status_code = 400


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    status_code = 400


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    status_code = 400


class InvalidScope(OAuthError):
    error = "invalid_scope"
    status_code = 400


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, unknown or not allowed."""

    error = "invalid_target"
    status_code = 400


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    error = "unsupported_token_type"
    status_code = 400


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1: the authorization server does not support this response type."""

    error = "unsupported_response_type"
    status_code = 400


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1: the resource owner denied the request."""

    error = "access_denied"
    status_code = 400


class LoginRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: prompt=none, but the user is not logged in."""

    error = "login_required"
    status_code = 400


class ConsentRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: prompt=none, but consent is missing."""

    error = "consent_required"
    status_code = 400


class InteractionRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: prompt=none, but the user must interact (e.g. a second factor)."""

    error = "interaction_required"
    status_code = 400


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the access token is expired, revoked, malformed or not an access token."""

    error = "invalid_token"
    status_code = 401


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


__all__ = [
    "AccessDenied",
    "ConsentRequired",
    "InteractionRequired",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "InvalidToken",
    "LoginRequired",
    "OAuthError",
    "ServerError",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UnsupportedTokenType",
]
