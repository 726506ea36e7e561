"""OpenID Connect Core 1.0. https://openid.net/specs/openid-connect-core-1_0.html

ID token claims (§2, §3.1.3.6 at_hash), standard scope claims (§5.4), the `typ` that keeps
ID tokens and access tokens apart (RFC 9068 §2.1, RFC 8725 §3.11), and the checks on an ID token
read back as a logout hint (RP-Initiated Logout 1.0 §2), and the response modes of the
authorization response (`response_mode`: Multiple Response Type Encoding Practices, Form Post
Response Mode).
"""

from bastion.protocol.oidc.claims import (
    ACR_MFA,
    ACR_PASSWORD,
    ID_TOKEN_TYP,
    SCOPE_CLAIMS,
    at_hash,
    id_token_claims,
    id_token_header,
    scope_claims,
)
from bastion.protocol.oidc.id_token import ID_TOKEN_HINT_CHECKS, IdTokenCheck
from bastion.protocol.oidc.response_mode import FORM_POST, QUERY, RESPONSE_MODES_SUPPORTED, parse_response_mode

__all__ = [
    "ACR_MFA",
    "ACR_PASSWORD",
    "FORM_POST",
    "ID_TOKEN_HINT_CHECKS",
    "ID_TOKEN_TYP",
    "QUERY",
    "RESPONSE_MODES_SUPPORTED",
    "SCOPE_CLAIMS",
    "IdTokenCheck",
    "at_hash",
    "id_token_claims",
    "id_token_header",
    "parse_response_mode",
    "scope_claims",
]
