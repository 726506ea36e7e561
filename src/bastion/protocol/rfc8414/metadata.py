"""Well-known metadata URLs of an issuer, and the check that a document belongs to its URL."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["OAUTH_WELL_KNOWN", "OPENID_WELL_KNOWN", "discovery_matches", "well_known_urls"]

# RFC 8414 §7.3 and OpenID Connect Discovery 1.0 §4: the registered well-known suffixes.
OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OPENID_WELL_KNOWN = "/.well-known/openid-configuration"


def well_known_urls(issuer: str) -> frozenset[str]:
    """Every URL an issuer's metadata may be fetched from.

    OpenID Connect Discovery §4 appends its suffix to the issuer; RFC 8414 §3.1 inserts its
    suffix between the host and the issuer's path (appending is what many servers do anyway).
    """
    base = issuer.rstrip("/")
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return frozenset(
        {
            f"{base}{OPENID_WELL_KNOWN}",
            f"{base}{OAUTH_WELL_KNOWN}",
            f"{parts.scheme}://{parts.netloc}{OAUTH_WELL_KNOWN}{path}",
        }
    )


def discovery_matches(discovery_url: str, issuer: str) -> bool:
    """RFC 8414 §3.3 / OIDC Discovery §4.3: the metadata's issuer built the well-known URL."""
    return discovery_url in well_known_urls(issuer)
