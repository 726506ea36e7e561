"""RFC 6749: The OAuth 2.0 Authorization Framework. https://www.rfc-editor.org/rfc/rfc6749

Request parsing (§3.2: form-encoded bodies, no repeated parameters), client authentication
credentials (§2.3), scope syntax (§3.3) and grant types (§4.4).
"""

from bastion.protocol.rfc6749.client_auth import (
    ClientCredentials,
    extract_client_credentials,
    parse_basic_authorization,
)
from bastion.protocol.rfc6749.params import parse_form
from bastion.protocol.rfc6749.scope import check_scope_syntax, narrowed_scope, parse_scope, resolve_scope

__all__ = [
    "ClientCredentials",
    "check_scope_syntax",
    "extract_client_credentials",
    "narrowed_scope",
    "parse_basic_authorization",
    "parse_form",
    "parse_scope",
    "resolve_scope",
]
