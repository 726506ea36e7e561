"""RFC 8414: OAuth 2.0 Authorization Server Metadata. https://www.rfc-editor.org/rfc/rfc8414

With OpenID Connect Discovery 1.0 (https://openid.net/specs/openid-connect-discovery-1_0.html):
where an issuer's metadata lives (§3) and the rule that the metadata's `issuer` must be the one
that built that URL (§3.3), which stops a metadata document impersonating another issuer.
"""

from bastion.protocol.rfc8414.metadata import (
    OAUTH_WELL_KNOWN,
    OPENID_WELL_KNOWN,
    discovery_matches,
    well_known_urls,
)

__all__ = ["OAUTH_WELL_KNOWN", "OPENID_WELL_KNOWN", "discovery_matches", "well_known_urls"]
