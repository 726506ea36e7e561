"""Single-use recovery codes: ten per user, shown once, stored as SHA-256 hashes.

Each code carries 50 random bits from a 32-letter alphabet, so a fast hash is enough; login
throttling bounds guessing, and a used code is marked and never accepted again.
"""

from __future__ import annotations

import hashlib
import secrets

COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed by people


def generate_codes(count: int = COUNT) -> list[str]:
    """New codes formatted `xxxxx-xxxxx`."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise(code: str) -> str:
    return code.strip().lower().replace(" ", "").replace("-", "")


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(normalise(code)) == 10
