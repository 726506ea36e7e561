"""The `resource` parameter chooses the access token's audience (RFC 8707 §2)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from bastion.protocol.errors import InvalidTarget


def select_audience(resources: Sequence[str], allowed: Sequence[str], default: str) -> str:
    """Return the audience for a token.

    Args:
        resources: the request's `resource` values (may be empty).
        allowed: the client's registered audiences (empty: only the default audience).
        default: the audience when no resource is requested.

    Raises:
        InvalidTarget: a resource is not an absolute URI without fragment (§2), is not allowed for
            this client, or several are requested (Bastion issues one audience per token so that a
            token is never accepted by two resource servers).
    """
    if not resources:
        return allowed[0] if allowed else default
    if len(resources) > 1:
        raise InvalidTarget("request a single resource per token")
    resource = resources[0]
    parts = urlsplit(resource)
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in resource:
        raise InvalidTarget("resource must be an absolute URI without a fragment (RFC 8707 §2)")
    permitted = allowed or (default,)
    if resource not in permitted:
        raise InvalidTarget("resource not allowed for this client")
    return resource
