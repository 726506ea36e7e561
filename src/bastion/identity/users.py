"""Users as stored: creation, lookup, password changes, TOTP enrolment and recovery codes.

Shared by the CLI (`bastion users`) and the server's login pages. The TOTP secret is encrypted
under the key-encryption key with the user's `sub` bound as associated data, so a secret copied
to another row does not decrypt.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from bastion.identity import recovery
from bastion.identity.passwords import PasswordHasher, check_password_policy
from bastion.keys import KeyEncryptor
from bastion.store import Database, refresh_tokens, transaction
from bastion.store import sessions as browser_sessions
from bastion.store import users as stored
from bastion.store.users import UserRow

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,149}")
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,63}")


class UserError(ValueError):
    """A request the CLI refuses with this message."""


@dataclass(frozen=True)
class NewUser:
    username: str
    email: str = ""
    email_verified: bool = False
    display_name: str = ""
    roles: tuple[str, ...] = ()
    profile: dict[str, Any] = field(default_factory=dict)
    require_mfa: bool = False


@dataclass(frozen=True)
class User:
    """An immutable snapshot of a user row."""

    sub: str
    username: str
    email: str
    email_verified: bool
    display_name: str
    profile: dict[str, Any]
    roles: tuple[str, ...]
    enabled: bool
    password_hash: str = field(repr=False)
    totp_secret: bytes | None = field(repr=False)
    totp_last_step: int | None
    updated_at: int
    # Marked to need a second factor at every sign-in, whatever the server's policy
    # (`bastion users set-mfa USER required`); the policy itself is `server.flow`'s.
    require_mfa: bool = False

    @property
    def mfa_enrolled(self) -> bool:
        return self.totp_secret is not None

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(
            sub=row.sub,
            username=row.username,
            email=row.email,
            email_verified=row.email_verified,
            display_name=row.display_name,
            profile=json.loads(row.profile or "{}"),
            roles=tuple(row.roles.split()),
            enabled=row.enabled,
            password_hash=row.password_hash,
            totp_secret=row.totp_secret,
            totp_last_step=row.totp_last_step,
            updated_at=row.updated_at,
            require_mfa=row.require_mfa,
        )


def describe(user: User) -> dict[str, Any]:
    return {
        "sub": user.sub,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "display_name": user.display_name,
        "roles": list(user.roles),
        "enabled": user.enabled,
        "mfa": "totp" if user.mfa_enrolled else "none",
        "require_mfa": user.require_mfa,
    }


def _check_new_user(new: NewUser) -> None:
    if not _USERNAME.fullmatch(new.username):
        raise UserError("--username must be 1-150 letters, digits or . _ @ + - and start with a letter or digit")
    if new.email and ("@" not in new.email or len(new.email) > 320 or any(c.isspace() for c in new.email)):
        raise UserError(f"--email {new.email} is not an email address")
    check_roles(new.roles)


def check_roles(roles: tuple[str, ...]) -> None:
    for role in roles:
        if not _ROLE.fullmatch(role):
            raise UserError(f"--role {role} must be letters, digits or : . _ -")


async def create_user(database: Database, hasher: PasswordHasher, new: NewUser, password: str) -> User:
    """Create a user with a stable random `sub`. Raises UserError or WeakPassword."""
    _check_new_user(new)
    check_password_policy(password, username=new.username, email=new.email)
    password_hash = await hasher.hash(password)
    now = int(time.time())
    row = UserRow(
        sub=secrets.token_urlsafe(16),
        username=new.username,
        email=new.email,
        email_verified=new.email_verified,
        display_name=new.display_name or new.username,
        profile=json.dumps(new.profile),
        roles=" ".join(dict.fromkeys(new.roles)),
        enabled=True,
        password_hash=password_hash,
        totp_secret=None,
        totp_last_step=None,
        created_at=now,
        updated_at=now,
        require_mfa=new.require_mfa,
    )
    if not await stored.insert(database, row):
        raise UserError(f"username {new.username} is taken")
    return User.from_row(row)


async def get_user(database: Database, sub: str) -> User | None:
    row = await stored.get(database, sub)
    return None if row is None else User.from_row(row)


async def find_user(database: Database, name: str) -> User | None:
    """By username, or by `sub` (the CLI accepts either)."""
    row = await stored.find(database, name)
    return None if row is None else User.from_row(row)


async def require_user(database: Database, name: str) -> User:
    user = await find_user(database, name)
    if user is None:
        raise UserError(f"no user {name}")
    return user


async def list_users(database: Database) -> list[User]:
    return [User.from_row(row) for row in await stored.list_all(database)]


async def set_enabled(database: Database, name: str, enabled: bool) -> User:
    """Enable or disable; disabling ends the user's browser sessions and refresh tokens."""
    user = await require_user(database, name)
    now = int(time.time())
    async with transaction(database) as tx:
        await stored.set_enabled(tx, user.sub, enabled, now)
        if not enabled:
            await browser_sessions.expire_for_user(tx, user.sub)
            await refresh_tokens.revoke_for_user(tx, user.sub, now)
    return await require_user(database, user.sub)


async def set_password(database: Database, hasher: PasswordHasher, name: str, password: str) -> User:
    user = await require_user(database, name)
    check_password_policy(password, username=user.username, email=user.email)
    password_hash = await hasher.hash(password)
    await store_password_hash(database, user.sub, password_hash)
    return await require_user(database, user.sub)


async def store_password_hash(database: Database, sub: str, password_hash: str) -> None:
    await stored.set_password_hash(database, sub, password_hash, int(time.time()))


async def set_require_mfa(database: Database, name: str, required: bool) -> User:
    """Require a second factor at every sign-in of the user (True), or leave it to the server's
    MFA policy (False). A session signed in without one is asked for it at its next request."""
    user = await require_user(database, name)
    await stored.set_require_mfa(database, user.sub, required, int(time.time()))
    return await require_user(database, user.sub)


async def reset_mfa(database: Database, name: str) -> User:
    """Remove the TOTP secret and recovery codes; the user enrols again when a second factor is next needed."""
    user = await require_user(database, name)
    now = int(time.time())
    async with transaction(database) as tx:
        await stored.clear_totp(tx, user.sub, now)
        await stored.spend_recovery_codes(tx, user.sub, now)
    return await require_user(database, user.sub)


def _aad(sub: str) -> str:
    return f"totp:{sub}"


def decrypt_totp_secret(encryptor: KeyEncryptor, user: User) -> str | None:
    if user.totp_secret is None:
        return None
    return encryptor.decrypt(user.totp_secret, _aad(user.sub)).decode()


async def enrol_totp(database: Database, encryptor: KeyEncryptor, sub: str, secret: str, step: int) -> list[str]:
    """Store the verified TOTP secret (and its first used step); return new recovery codes."""
    codes = recovery.generate_codes()
    now = int(time.time())
    async with transaction(database) as tx:
        if not await stored.enrol_totp(tx, sub, encryptor.encrypt(secret.encode(), _aad(sub)), step, now):
            raise UserError("a second factor is already enrolled")
        await stored.spend_recovery_codes(tx, sub, now)
        for code in codes:
            await stored.add_recovery_code(tx, sub, recovery.hash_code(code))
    return codes


async def use_totp_step(database: Database, sub: str, step: int) -> bool:
    """Record `step` as used; False if it (or a later one) was used already (replay)."""
    return await stored.use_totp_step(database, sub, step)


async def use_recovery_code(database: Database, sub: str, code: str) -> bool:
    """Spend one recovery code; False when it is wrong or already used."""
    return await stored.use_recovery_code(database, sub, recovery.hash_code(code), int(time.time()))
