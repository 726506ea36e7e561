"""RFC 9207: OAuth 2.0 Authorization Server Issuer Identification. https://www.rfc-editor.org/rfc/rfc9207

Every authorization response, success or error, carries `iss` (§2), so that a client talking to
several authorization servers can tell which one answered (mix-up attacks, RFC 9700 §4.4); the
metadata says so with `authorization_response_iss_parameter_supported` (§3).
"""

from bastion.protocol.rfc9207.response import (
    ISS_PARAMETER_SUPPORTED,
    error_params,
    error_response_uri,
    success_params,
    success_response_uri,
)

__all__ = ["ISS_PARAMETER_SUPPORTED", "error_params", "error_response_uri", "success_params", "success_response_uri"]
