"""Device codes and user codes (RFC 8628 §3.2, §5.1, §6.1).

The device code is a bearer secret the device keeps: 256 random bits, stored only as a hash.
The user code is what a person reads off a screen and types: 8 characters from the 20
consonants of §6.1 (no vowels, so no words; no digits or letters that look alike), shown as
`XXXX-XXXX`. 20^8 is about 2.6e10 codes (34.6 bits); with entry rate-limited per source and per
session (§5.1), guessing a live code within its lifetime is hopeless.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

# RFC 8628 §6.1: "base 20" consonants, case-insensitive, no vowels.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
DEVICE_CODE_BYTES = 32  # 256 bits
_GROUP = 4
# What a person may type between the characters: RFC 8628 §6.1 says the server should ignore
# punctuation and spaces the user adds.
_SEPARATORS = str.maketrans("", "", "- \t\u00a0\u2010\u2011\u2012\u2013\u2014")


def user_code_space() -> int:
    """How many distinct user codes exist (20^8)."""
    return int(len(USER_CODE_ALPHABET) ** USER_CODE_LENGTH)


def generate_device_code() -> str:
    """A fresh device code: 256 bits, URL-safe base64 (RFC 8628 §3.2, §5.2)."""
    return secrets.token_urlsafe(DEVICE_CODE_BYTES)


def generate_user_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh user code in its normalised form (8 upper-case consonants, no dash)."""
    return "".join(USER_CODE_ALPHABET[randbelow(len(USER_CODE_ALPHABET))] for _ in range(USER_CODE_LENGTH))


def format_user_code(code: str) -> str:
    """The form shown to people and returned to the device: `XXXX-XXXX`."""
    return f"{code[:_GROUP]}-{code[_GROUP:]}"


def normalize_user_code(typed: str) -> str | None:
    """What a person typed, as a normalised code; None when it cannot be a user code.

    Case is ignored and dashes and spaces are dropped (RFC 8628 §6.1).
    """
    code = typed.translate(_SEPARATORS).upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code
