"""Password hashing with Argon2id (RFC 9106) off the event loop, and the password policy.

Production parameters are OWASP's Argon2id minimum (m=19 MiB, t=2, p=1). The `testing` profile
uses cheap parameters so test suites run fast; `bastion serve` refuses it. A stored hash whose
parameters differ from the current profile is rehashed at the next successful login.

Hashing runs in a bounded thread pool (argon2-cffi releases the GIL), so a flood of logins waits
for a free worker instead of stalling token issuance on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

Profile = Literal["owasp", "testing"]

# OWASP Password Storage Cheat Sheet: Argon2id, m=19456 KiB, t=2, p=1.
OWASP = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}
# Cheap parameters for test suites only; `serve` refuses this profile.
TESTING = {"time_cost": 1, "memory_cost": 64, "parallelism": 1}
PROFILES: dict[str, dict[str, int]] = {"owasp": OWASP, "testing": TESTING}

# NIST SP 800-63B §5.1.1.2: at least 8; we ask for 10 and cap the length a hash will accept.
MIN_LENGTH = 10
MAX_LENGTH = 256


class WeakPassword(ValueError):
    """The password breaks the policy; the message says why and is safe to show."""


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower-cased)."""
    text = resources.files("bastion.identity").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password_policy(password: str, *, username: str = "", email: str = "") -> None:
    """Raise WeakPassword unless the password is long enough and not common or personal.

    NIST SP 800-63B §5.1.1.2: compare against commonly used or compromised values and
    context-specific words (the username); no composition rules.
    """
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must be at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in common_passwords():
        raise WeakPassword("this password is too common; choose another")
    personal = {username.lower(), email.lower(), email.split("@", 1)[0].lower()} - {""}
    if lowered in personal:
        raise WeakPassword("the password must not be the username or email address")


def default_threads() -> int:
    """Hashing threads: every core but one, so the event loop always has a core of its own
    (argon2-cffi releases the GIL, so the limit that matters is CPU, not the interpreter)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class Verification:
    """The result of checking a password: whether it matched and whether to store a new hash."""

    matched: bool
    new_hash: str | None = None


class PasswordHasher:
    """Argon2id hashing and verification in a bounded thread pool."""

    def __init__(self, profile: Profile = "owasp", *, threads: int | None = None) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown password hashing profile {profile!r}")
        self.profile = profile
        params = PROFILES[profile]
        self._argon2 = Argon2Hasher(
            time_cost=params["time_cost"],
            memory_cost=params["memory_cost"],
            parallelism=params["parallelism"],
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._pool = ThreadPoolExecutor(max_workers=threads or default_threads(), thread_name_prefix="argon2")
        # A dummy hash to verify against when the account does not exist, so the response time
        # does not reveal which usernames exist (OWASP Authentication Cheat Sheet).
        self._dummy = self._argon2.hash("not a password: timing equaliser")

    def hash_now(self, password: str) -> str:
        """Hash on the calling thread (CLI)."""
        return self._argon2.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._argon2.hash, password)

    def _verify(self, stored: str | None, password: str) -> Verification:
        try:
            self._argon2.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(False)
        if stored is None:
            return Verification(False)
        if self._argon2.check_needs_rehash(stored):
            return Verification(True, self._argon2.hash(password))
        return Verification(True)

    async def verify(self, stored: str | None, password: str) -> Verification:
        """Check `password` against `stored` (None: an unknown account, checked against a dummy)."""
        if len(password) > MAX_LENGTH:
            return Verification(False)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._verify, stored, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
