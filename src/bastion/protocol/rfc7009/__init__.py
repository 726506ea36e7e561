"""RFC 7009: OAuth 2.0 Token Revocation. https://www.rfc-editor.org/rfc/rfc7009

The rules of the revocation request that need no storage: the `token_type_hint` values (§2.1,
§4.1.2) and that a client may revoke only tokens issued to it (§2.1).
"""

from bastion.protocol.rfc7009.revocation import TOKEN_TYPE_HINTS, check_token_owner, check_token_type_hint

__all__ = ["TOKEN_TYPE_HINTS", "check_token_owner", "check_token_type_hint"]
