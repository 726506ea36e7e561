"""Authorization responses (RFC 6749 §4.1.2 and §4.1.2.1) with the RFC 9207 `iss` parameter."""

from __future__ import annotations

from bastion.protocol.errors import OAuthError
from bastion.protocol.rfc6749.authorization import response_uri

__all__ = ["ISS_PARAMETER_SUPPORTED", "error_response_uri", "success_response_uri"]

# RFC 9207 §3: the metadata parameter announcing that every response carries `iss`.
ISS_PARAMETER_SUPPORTED = "authorization_response_iss_parameter_supported"


def success_response_uri(redirect_uri: str, *, code: str, state: str | None, issuer: str) -> str:
    """RFC 6749 §4.1.2 with RFC 9207 §2 `iss`."""
    return response_uri(redirect_uri, {"code": code, "state": state, "iss": issuer})


def error_response_uri(redirect_uri: str, error: OAuthError, *, state: str | None, issuer: str) -> str:
    """RFC 6749 §4.1.2.1 with RFC 9207 §2 `iss` (an error response names its issuer too)."""
    return response_uri(
        redirect_uri,
        {
            "error": error.error,
            "error_description": error.description or None,
            "state": state,
            "iss": issuer,
        },
    )
