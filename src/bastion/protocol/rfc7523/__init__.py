"""RFC 7523: JWT Profile for OAuth 2.0 Client Authentication. https://www.rfc-editor.org/rfc/rfc7523

Claim rules for `private_key_jwt` client assertions (§3), tightened as the RFC 7523 update
(draft-ietf-oauth-rfc7523bis) and FAPI 2.0 require against audience injection: `aud` is a single
value equal to the issuer identifier.
"""

from bastion.protocol.rfc7523.assertion import AssertionPolicy, check_assertion_claims, check_assertion_header

__all__ = ["AssertionPolicy", "check_assertion_claims", "check_assertion_header"]
