"""Browser sessions: the cookie, its id, CSRF tokens and the timeouts (sans-I/O rules).

The cookie holds 256 random bits; the database keeps only their SHA-256, so a stolen table does
not yield live sessions. The cookie is `__Host-` prefixed, `Secure`, `HttpOnly`, `SameSite=Lax`
and `Path=/` (RFC 6265bis §4.1.3.2): a sibling subdomain cannot set or overwrite it. The id is
rotated at login (session fixation, OWASP Session Management Cheat Sheet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

COOKIE_NAME = "__Host-bastion-session"

ANONYMOUS = "anonymous"
PASSWORD = "password"  # noqa: S105 - a stage name: first factor done, second factor pending
AUTHENTICATED = "authenticated"


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of the form's CSRF token with the session's."""
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def cookie_header(session_id: str, max_age: int) -> str:
    """The Set-Cookie value for the session cookie."""
    return f"{COOKIE_NAME}={session_id}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Lax"


def clearing_cookie_header() -> str:
    return f"{COOKIE_NAME}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"


@dataclass(frozen=True)
class Timeouts:
    idle: int
    absolute: int

    def alive(self, *, last_seen_at: int, expires_at: int, now: int) -> bool:
        """A session lives until its absolute expiry, and only while it is used within `idle`."""
        return now < expires_at and now - last_seen_at < self.idle

    @property
    def touch_every(self) -> int:
        """Seconds between writes of a session's last use: a twentieth of the idle timeout, 1 to
        60. A session may so end up to that much early, never late, and a page load does not
        cost a write."""
        return max(1, min(60, self.idle // 20))
