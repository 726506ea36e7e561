"""What a registered redirection URI (and the other URIs a client registers) may be.

RFC 6749 §3.1.2: absolute, without fragment. RFC 9700 §2.6 / §4.1: authorization responses
never travel in cleartext, so `https`, or `http` only for a native app's loopback redirect, which
RFC 8252 §7.3 builds from a loopback IP literal; §8.3 calls `localhost` NOT RECOMMENDED, and
here it is refused (a name can resolve elsewhere; the IP literal cannot). RFC 8252 §7.1: a native
app's private-use scheme is a reverse domain name (§8.4: one without a period is rejected), so `javascript:`,
`data:`, `file:` and the like, which a browser would run or read rather than hand to an app, are
never targets. A URI with a space would be split in two where URIs are stored space-separated.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from urllib.parse import SplitResult, urlsplit

from bastion.protocol.errors import InvalidClientMetadata, InvalidRedirectUriMetadata

__all__ = [
    "DENIED_SCHEMES",
    "check_jwks_uri",
    "check_redirect_uri",
    "check_redirect_uris_for_grants",
    "is_valid_redirect_uri",
]

# Schemes a browser executes, reads locally or treats as its own: never a redirect target,
# named here so the refusal says why (none contains a period, so §7.1 refuses them anyway).
DENIED_SCHEMES = frozenset(
    {"javascript", "vbscript", "data", "file", "blob", "filesystem", "about", "view-source", "chrome", "ftp"}
)
# RFC 3986 §2: printable US-ASCII without space; anything else (space, tab, newline, NUL,
# non-ASCII) is refused rather than guessed at.
_URI_CHARACTERS = re.compile(r"[\x21-\x7e]+")
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def _parts(uri: str) -> SplitResult:
    """The URI split, once the rules every registered URI shares hold (RFC 6749 §3.1.2)."""
    if not _URI_CHARACTERS.fullmatch(uri):
        raise InvalidRedirectUriMetadata("must be printable ASCII without spaces or control characters")
    parts = urlsplit(uri)
    if not parts.scheme or not _SCHEME.fullmatch(parts.scheme):
        raise InvalidRedirectUriMetadata("must be an absolute URI with a scheme (RFC 6749 §3.1.2)")
    if "#" in uri:
        raise InvalidRedirectUriMetadata("must not contain a fragment (RFC 6749 §3.1.2)")
    if "@" in parts.netloc:
        raise InvalidRedirectUriMetadata("must not carry user information (user@host)")
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise InvalidRedirectUriMetadata("has an invalid port") from None
    return parts


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_web(parts: SplitResult) -> None:
    host = parts.hostname or ""
    if not host:
        raise InvalidRedirectUriMetadata(f"an {parts.scheme} URI needs a host")
    if parts.scheme == "https":
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidRedirectUriMetadata(
            "use the loopback IP literal 127.0.0.1 or [::1], not localhost (RFC 8252 §8.3)"
        )
    if not _is_loopback_ip(host):
        raise InvalidRedirectUriMetadata(
            "must be https; http only on a loopback IP literal, 127.0.0.1 or [::1] (RFC 8252 §7.3)"
        )


def check_redirect_uri(uri: str) -> None:
    """A redirection URI (or post-logout redirect URI) a client may register.

    Raises:
        InvalidRedirectUriMetadata: with a description naming the rule it breaks.
    """
    parts = _parts(uri)
    scheme = parts.scheme
    if scheme in ("https", "http"):
        _check_web(parts)
    elif scheme in DENIED_SCHEMES:
        raise InvalidRedirectUriMetadata(f"the {scheme}: scheme is never a redirect target")
    elif "." not in scheme or not all(scheme.split(".")):
        # RFC 8252 §8.4: at a minimum, a private-use scheme without a period SHOULD be rejected.
        raise InvalidRedirectUriMetadata(
            "a private-use scheme must be a reverse domain name, such as com.example.app: (RFC 8252 §7.1, §8.4)"
        )
    elif not (parts.netloc or parts.path):
        raise InvalidRedirectUriMetadata("a private-use scheme URI needs a path, such as com.example.app:/callback")


def is_valid_redirect_uri(uri: str) -> bool:
    """True when `check_redirect_uri` accepts it: for stored rows, read before this rule."""
    try:
        check_redirect_uri(uri)
    except InvalidRedirectUriMetadata:
        return False
    return True


def check_jwks_uri(uri: str) -> None:
    """RFC 7591 §2 jwks_uri: where the client's keys are fetched, https (http only on a
    loopback IP literal, for tests and local development), so no one on the path swaps them.

    Raises:
        InvalidClientMetadata: with a description naming the rule it breaks.
    """
    try:
        parts = _parts(uri)
        if parts.scheme not in ("https", "http"):
            raise InvalidRedirectUriMetadata("must be https")
        _check_web(parts)
    except InvalidRedirectUriMetadata as exc:
        raise InvalidClientMetadata(exc.description) from None


def check_redirect_uris_for_grants(grants: Collection[str], redirect_uris: Collection[str]) -> None:
    """RFC 9700 §2.1 / RFC 6749 §3.1.2.2: a client of the authorization code grant registers its
    redirection URIs; without one its every authorization request would fail.

    Raises:
        InvalidRedirectUriMetadata: authorization_code without a redirect URI.
    """
    if "authorization_code" in grants and not redirect_uris:
        raise InvalidRedirectUriMetadata("the authorization_code grant needs at least one redirect URI")
