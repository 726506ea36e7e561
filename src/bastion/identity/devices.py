"""Device cookies: a browser that has signed in to an account before is recognised by it.

OWASP's answer to lockout as denial of service ("Slow Down Online Guessing Attacks with Device
Cookies"): on a completed sign-in the browser gets a cookie binding the account; a later attempt
at that account carrying a valid one is judged by that cookie's own failures only, so strangers
hammering the account (from anywhere) cannot lock out the browsers its owner already uses.

The value is `v1.<nonce>.<expires>.<mac>`: 128 random bits naming the device (its failures are
counted under that name), the expiry in seconds since the epoch, and HMAC-SHA-256 over the
three with the account, under a key derived from the server's secret material. The account
itself is not in the cookie; a value is only valid for the account it was issued for, and only
the server can make one. The cookie is `__Host-` prefixed, `Secure`, `HttpOnly`,
`SameSite=Lax` and `Path=/`, like the session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE_NAME = "__Host-bastion-device"
_VERSION = "v1"
_LABEL = b"bastion device cookie v1"


def device_cookie_key(secret: bytes) -> bytes:
    """The MAC key for device cookies: HMAC-SHA-256 of a fixed label under the server secret
    (the HKDF-Expand step with one block), so no other use of that secret shares this key."""
    return hmac.new(secret, _LABEL, hashlib.sha256).digest()


def account_key(account: str) -> str:
    """The name a device cookie (and the throttle) binds: the username as typed, case folded."""
    return account.lower()


class DeviceCookies:
    """Issues and verifies device cookies under one key."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def _mac(self, account: str, nonce: str, expires: str) -> str:
        mac = self._keyed.copy()
        mac.update(f"{_VERSION}\x00{account_key(account)}\x00{nonce}\x00{expires}".encode())
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def issue(self, account: str, now: int, lifetime: int) -> str:
        """A new cookie value for `account`, valid for `lifetime` seconds."""
        nonce, expires = secrets.token_urlsafe(16), str(now + lifetime)
        return f"{_VERSION}.{nonce}.{expires}.{self._mac(account, nonce, expires)}"

    def device(self, value: str | None, account: str, now: int) -> str | None:
        """The device's name (its nonce) when `value` is a valid, unexpired cookie for `account`;
        None for anything else (absent, altered, expired, another account's)."""
        if not value or len(value) > 200:
            return None
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not (parts[2].isascii() and parts[2].isdigit()):
            return None
        _, nonce, expires, mac = parts
        if not hmac.compare_digest(mac.encode(), self._mac(account, nonce, expires).encode()):
            return None
        return nonce if now < int(expires) else None


def cookie_header(value: str, max_age: int) -> str:
    """The Set-Cookie value for a device cookie."""
    return f"{COOKIE_NAME}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Lax"
