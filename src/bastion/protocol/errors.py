"""Every protocol error, authorization server and resource server alike, under one base.

RFC 6749 §4.1.2.1 and §5.2 (authorization and token endpoints), RFC 6750 §3.1 (bearer-token
refusals), RFC 7009 §2.2.1, RFC 8707 §2, OpenID Connect Core §3.1.2.6, and the resource
server's own refusals (API keys, entitlements, hidden objects). Each error carries a public
`description` (sent to the client) and a private `detail` (logged, never sent). Two renderers
turn them into answers: the RFC 6749 §5.2 JSON body (`bastion.server.responses`) and the
RFC 6750 §3 challenge (`bastion.protocol.rfc6750`).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "INVALID_TOKEN_DESCRIPTION",
    "AccessDenied",
    "BasicNotAccepted",
    "ConsentRequired",
    "CredentialNotAccepted",
    "Forbidden",
    "InsufficientScope",
    "InvalidApiKey",
    "InvalidClient",
    "InvalidClientMetadata",
    "InvalidGrant",
    "InvalidRedirectUriMetadata",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "InvalidToken",
    "LoginRequired",
    "MissingCredentials",
    "NotFound",
    "OAuthError",
    "RequestNotSupported",
    "RequestUriNotSupported",
    "ServerError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UnsupportedTokenType",
]

# Every token failure shares one public description: a precise reason such as "bad signature"
# or "unknown kid" only helps an attacker tune a forgery (RFC 6750 §3.1 lets us describe less).
# S105: a public error message, not a password.
INVALID_TOKEN_DESCRIPTION = "The access token is invalid, expired or revoked."  # noqa: S105


class OAuthError(Exception):
    """Base of every protocol error; anything unexpected becomes a bare `server_error`."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 500

    def __init__(self, description: str = "", *, detail: str | None = None) -> None:
        super().__init__(description or detail or self.error)
        self.description = description
        self.detail = detail


# ---- RFC 6749 §4.1.2.1 / §5.2, RFC 7009, RFC 8707, OpenID Connect Core -----------------------


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2 / RFC 6750 §3.1: malformed, repeated or missing parameters, or a token sent
    by more than one method (RFC 6750 §2)."""

    error = "invalid_request"
    status_code = 400


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed (401; `WWW-Authenticate` when Basic was used)."""

    error = "invalid_client"
    status_code = 401

    def __init__(self, description: str = "", *, detail: str | None = None, used_basic: bool = False) -> None:
        super().__init__(description, detail=detail)
        self.used_basic = used_basic


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a value of the client's registered metadata is invalid."""

    error = "invalid_client_metadata"
    status_code = 400


class InvalidRedirectUriMetadata(InvalidClientMetadata):
    """RFC 7591 §3.2.2: a registered redirection URI is invalid (`invalid_redirect_uri`)."""

    error = "invalid_redirect_uri"


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


class RequestNotSupported(OAuthError):
    """OpenID Connect Core §3.1.2.6 `request_not_supported`: a `request` parameter (a request
    object, §6.1), which we do not support."""

    error = "request_not_supported"
    status_code = 400


class RequestUriNotSupported(OAuthError):
    """OpenID Connect Core §3.1.2.6 `request_uri_not_supported` (RFC 9101 §10.4): a
    `request_uri` parameter (a request object by reference, §6.2), which we do not support."""

    error = "request_uri_not_supported"
    status_code = 400


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


# ---- RFC 6750 §3.1 and the resource server's refusals ----------------------------------------


class MissingCredentials(OAuthError):
    """No credentials at all: RFC 6750 §3.1 says the challenge carries no error code."""

    error = ""
    status_code = 401


class BasicNotAccepted(OAuthError):
    """`Authorization: Basic` sent to an API that only takes bearer tokens (or API keys)."""

    error = ""
    status_code = 401


class CredentialNotAccepted(OAuthError):
    """A credential of a kind this route does not take (an API key where a user is needed)."""

    error = "invalid_request"
    status_code = 401


class InvalidApiKey(OAuthError):
    """An API key that is malformed, unknown, expired or revoked."""

    error = "invalid_api_key"
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__("The API key is invalid, expired or revoked.", detail=detail)


class InvalidToken(OAuthError):
    """RFC 6750 §3.1 invalid_token: malformed, expired, revoked or not an access token."""

    error = "invalid_token"
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(INVALID_TOKEN_DESCRIPTION, detail=detail)


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1 insufficient_scope: the token lacks a scope the request needs."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(self, scope: tuple[str, ...], *, detail: str | None = None) -> None:
        super().__init__("The access token does not grant the scope this request needs.", detail=detail)
        self.scope = scope


class Forbidden(OAuthError):
    """The caller is authenticated and scoped, but not entitled (RBAC or object policy)."""

    error = "forbidden"
    status_code = 403

    def __init__(self, detail: str | None = None) -> None:
        super().__init__("You are not allowed to perform this operation.", detail=detail)


class NotFound(OAuthError):
    """An object the caller may not see: answered like a missing one (no BOLA oracle)."""

    error = "not_found"
    status_code = 404

    def __init__(self, detail: str | None = None) -> None:
        super().__init__("Not found.", detail=detail)
