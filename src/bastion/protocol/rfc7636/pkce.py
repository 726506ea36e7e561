"""PKCE rules at the authorization endpoint (§4.3, §4.4.1) and the token endpoint (§4.5, §4.6)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from bastion.protocol.errors import InvalidGrant, InvalidRequest

S256 = "S256"
# RFC 7636 §4.1: code-verifier = 43*128unreserved; unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# §4.2: the S256 challenge is BASE64URL(SHA256(verifier)) without padding: 43 characters.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256_challenge(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str | None, method: str | None, *, required: bool) -> str | None:
    """Validate `code_challenge` and `code_challenge_method` of an authorization request.

    Returns the challenge (or None when none was sent and none is required).

    Raises:
        InvalidRequest: missing when required, `plain` or another method, or malformed
            (RFC 7636 §4.4.1).
    """
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method without code_challenge")
        if required:
            raise InvalidRequest("code_challenge is required (PKCE with S256, RFC 7636)")
        return None
    if method is None:
        # §4.3 defaults a missing method to `plain`, which we do not accept.
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method != S256:
        raise InvalidRequest("code_challenge_method must be S256")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
    return challenge


def verify_code_verifier(verifier: str | None, challenge: str | None) -> None:
    """Check the token request's `code_verifier` against the code's challenge.

    Raises:
        InvalidGrant: a verifier is missing, malformed or wrong; or one is sent for a code issued
            without a challenge (RFC 9700 §4.8.2, PKCE downgrade).
    """
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent, but the authorization request had no code_challenge")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
    if not hmac.compare_digest(s256_challenge(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
