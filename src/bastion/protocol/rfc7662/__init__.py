"""RFC 7662: OAuth 2.0 Token Introspection. https://www.rfc-editor.org/rfc/rfc7662

The introspection response (§2.2): which claims of an active token are shown, and the bare
`{"active": false}` for anything the caller may not learn about (§4), including a token issued
for an audience outside the caller's.
"""

from bastion.protocol.rfc7662.response import INACTIVE, SHOWN_CLAIMS, active_response, visible_to

__all__ = ["INACTIVE", "SHOWN_CLAIMS", "active_response", "visible_to"]
