"""RFC 9068: JWT Profile for OAuth 2.0 Access Tokens. https://www.rfc-editor.org/rfc/rfc9068

Minting (§2: header and claims) and validating (§4, with the RFC 8725 checks): the checks as
readable tuples (`HEADER_CHECKS`, `CLAIM_CHECKS`), the trusted-issuer policy and the sans-I/O
validator that the guard and the authorization server both run.
"""

from bastion.protocol.rfc9068.checks import CLAIM_CHECKS, HEADER_CHECKS, ClaimCheck, HeaderCheck
from bastion.protocol.rfc9068.claims import ACCESS_TOKEN_TYP, AccessTokenClaims, access_token_header
from bastion.protocol.rfc9068.issuer import ANY_AUDIENCE, DEFAULT_LEEWAY, TrustedIssuer
from bastion.protocol.rfc9068.validator import AccessToken, AccessTokenValidator, UnknownIssuer, UnknownKey

__all__ = [
    "ACCESS_TOKEN_TYP",
    "ANY_AUDIENCE",
    "CLAIM_CHECKS",
    "DEFAULT_LEEWAY",
    "HEADER_CHECKS",
    "AccessToken",
    "AccessTokenClaims",
    "AccessTokenValidator",
    "ClaimCheck",
    "HeaderCheck",
    "TrustedIssuer",
    "UnknownIssuer",
    "UnknownKey",
    "access_token_header",
]
