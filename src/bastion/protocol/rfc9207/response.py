"""Authorization responses (RFC 6749 §4.1.2 and §4.1.2.1) with the RFC 9207 `iss` parameter."""

from __future__ import annotations

from bastion.protocol.errors import OAuthError
from bastion.protocol.rfc6749.authorization import response_uri

__all__ = [
    "ISS_PARAMETER_SUPPORTED",
    "error_params",
    "error_response_uri",
    "success_params",
    "success_response_uri",
]

# RFC 9207 §3: the metadata parameter announcing that every response carries `iss`.
ISS_PARAMETER_SUPPORTED = "authorization_response_iss_parameter_supported"


def success_params(*, code: str, state: str | None, issuer: str) -> dict[str, str | None]:
    """RFC 6749 §4.1.2 with RFC 9207 §2 `iss` (None: left out)."""
    return {"code": code, "state": state, "iss": issuer}


def error_params(error: OAuthError, *, state: str | None, issuer: str) -> dict[str, str | None]:
    """RFC 6749 §4.1.2.1 with RFC 9207 §2 `iss` (an error response names its issuer too)."""
    return {"error": error.error, "error_description": error.description or None, "state": state, "iss": issuer}


def success_response_uri(redirect_uri: str, *, code: str, state: str | None, issuer: str) -> str:
    """The success response in the query of the redirect URI."""
    return response_uri(redirect_uri, success_params(code=code, state=state, issuer=issuer))


def error_response_uri(redirect_uri: str, error: OAuthError, *, state: str | None, issuer: str) -> str:
    """The error response in the query of the redirect URI."""
    return response_uri(redirect_uri, error_params(error, state=state, issuer=issuer))
