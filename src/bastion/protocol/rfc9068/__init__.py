"""RFC 9068: JWT Profile for OAuth 2.0 Access Tokens. https://www.rfc-editor.org/rfc/rfc9068"""

from bastion.protocol.rfc9068.claims import ACCESS_TOKEN_TYP, AccessTokenClaims, access_token_header

__all__ = ["ACCESS_TOKEN_TYP", "AccessTokenClaims", "access_token_header"]
