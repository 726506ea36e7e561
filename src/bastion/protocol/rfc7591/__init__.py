"""RFC 7591: OAuth 2.0 Dynamic Client Registration Protocol. https://www.rfc-editor.org/rfc/rfc7591

The rules on the URIs a client registers (§2 client metadata: `redirect_uris`, `jwks_uri`; and
OpenID Connect RP-Initiated Logout 1.0 §3 `post_logout_redirect_uris`), whichever way it is
registered: one validator for every registration path, also applied to stored rows when read.
"""

from bastion.protocol.rfc7591.metadata import (
    DENIED_SCHEMES,
    check_jwks_uri,
    check_redirect_uri,
    check_redirect_uris_for_grants,
    is_valid_redirect_uri,
)

__all__ = [
    "DENIED_SCHEMES",
    "check_jwks_uri",
    "check_redirect_uri",
    "check_redirect_uris_for_grants",
    "is_valid_redirect_uri",
]
