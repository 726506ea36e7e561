"""The token endpoint's device-flow errors (RFC 8628 §3.5); `access_denied` is RFC 6749's."""

from __future__ import annotations

from bastion.protocol.errors import OAuthError


class AuthorizationPending(OAuthError):
    """The user has not yet approved or denied the request; poll again after the interval."""

    error = "authorization_pending"
    status_code = 400


class SlowDown(OAuthError):
    """The device polled sooner than the interval; the interval grows by 5 seconds."""

    error = "slow_down"
    status_code = 400


class ExpiredToken(OAuthError):
    """The device code has expired; the device must start a new device authorization request."""

    error = "expired_token"
    status_code = 400
