"""Splitting a JWS compact serialization (RFC 7515 §7.1) without trusting any of it yet.

Readers parse the header themselves so that they can refuse dangerous headers before any key is
chosen, then verify with a key object prepared once per JWK (see `keys`). Failures are
`InvalidToken` with a private detail; a reader of something other than an access token (a
client assertion, an ID token hint) turns it into its own error.
"""

from __future__ import annotations

import binascii
import json
import re
from base64 import urlsafe_b64decode
from dataclasses import dataclass
from typing import Any

from bastion.protocol.errors import InvalidToken

__all__ = [
    "MAX_TOKEN_LENGTH",
    "CompactJWS",
    "b64url_decode",
    "decode_header",
    "decode_object",
    "looks_like_jws",
    "parse_compact",
    "split_compact",
]

# A token is attacker-sized input; 16 KiB is far above any real access token and bounds the
# work done before the signature is checked.
MAX_TOKEN_LENGTH = 16 * 1024

# RFC 7515 §2: base64url without padding; three non-empty segments (the empty-signature
# "h.p." form and the two-segment "h.p" form are both refused here, CVE-2020-28042).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """The three parts of a compact JWS; nothing in it is verified yet."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url (the caller has already checked the alphabet)."""
    return urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def looks_like_jws(token: str) -> bool:
    """True when the token has the shape of a JWS compact serialization (two dots)."""
    return token.count(".") == 2


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §4: duplicate header names must be rejected or the last one used; a header
    # with two "alg" members is an attack, so reject.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidToken("duplicate member in JOSE header")
    return result


def split_compact(token: str) -> tuple[str, str, str]:
    """The three base64url segments of a compact JWS.

    Raises:
        InvalidToken: too long, or not three non-empty base64url segments.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("token too long")
    if _COMPACT.fullmatch(token) is None:
        raise InvalidToken("not a JWS compact serialization")
    header_b64, payload_b64, signature_b64 = token.split(".")
    return header_b64, payload_b64, signature_b64


def decode_header(segment: str) -> dict[str, Any]:
    """Decode a JOSE header, refusing duplicate members.

    Raises:
        InvalidToken: not base64url-encoded UTF-8 JSON object, or a duplicate member.
    """
    try:
        header = json.loads(b64url_decode(segment), object_pairs_hook=_no_duplicates)
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidToken("undecodable JWS segment") from exc
    if not isinstance(header, dict):
        raise InvalidToken("JOSE header or claims are not JSON objects")
    return header


def decode_object(segment: str) -> dict[str, Any]:
    """Decode the claims segment (RFC 7515 §4 allows taking the last of duplicate members).

    Raises:
        InvalidToken: not base64url-encoded UTF-8 JSON object.
    """
    try:
        claims = json.loads(b64url_decode(segment))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("undecodable JWS segment") from exc
    if not isinstance(claims, dict):
        raise InvalidToken("JOSE header or claims are not JSON objects")
    return claims


def parse_compact(token: str) -> CompactJWS:
    """Split and decode a compact JWS.

    Raises:
        InvalidToken: the token is not a well-formed JWS with JSON-object header and claims.
    """
    header_b64, payload_b64, signature_b64 = split_compact(token)
    header = decode_header(header_b64)
    claims = decode_object(payload_b64)
    try:
        signature = b64url_decode(signature_b64)
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("undecodable JWS segment") from exc
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return CompactJWS(header, claims, signing_input, signature)
