"""Users and their recovery codes (`users`, `recovery_codes`): the only address of those rows.

Changes of state that must happen once are conditional UPDATEs whose returned rows say who won:
enrolling a second factor, using a TOTP step (a later or equal step is a replay), spending a
recovery code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BindParameter, Table, bindparam, delete, or_, select, update

from bastion.store._sql import Executor, Row, Sql, T, inserting, record, records, row, rows, values
from bastion.store.models import recovery_codes, users


@dataclass(slots=True, frozen=True)
class UserRow:
    sub: str
    username: str
    email: str
    email_verified: bool
    display_name: str
    profile: str  # JSON object of OpenID Connect profile claims
    roles: str  # space-separated
    enabled: bool
    password_hash: str = field(repr=False)
    totp_secret: bytes | None = field(repr=False)
    totp_last_step: int | None
    created_at: int
    updated_at: int
    require_mfa: bool = False  # every sign-in needs a second factor, whatever the server's policy


@dataclass(slots=True, frozen=True)
class RecoveryCodeRow:
    id: int
    sub: str
    code_hash: str
    used_at: int | None


WIDTH = len(users.columns)


def from_joined(found: Row) -> UserRow | None:
    """The user in the leading columns of a joined row; None when an outer join found none (the
    primary key, never NULL in a stored row, is)."""
    return None if found[0] is None else UserRow(*found[:WIDTH])


def joined(table: Table, key: str) -> Sql:
    """A statement reading `table`'s row by its `key` column with its user's columns after it
    (NULLs when the user is gone): the grants read a code or refresh token this way."""
    with_user = table.outerjoin(users, users.c.sub == table.c.sub)
    return Sql(select(table, users).select_from(with_user).where(table.c[key] == bindparam(key)), key)


async def with_user(on: Executor, sql: Sql, make: Callable[..., T], key: str) -> tuple[T | None, UserRow | None]:
    """Run a `joined` statement: the row as `make` builds it, and its user (each None if absent)."""
    found = await row(on, sql, key)
    if found is None:
        return None, None
    width = len(found) - WIDTH
    return make(*found[:width]), from_joined(found[width:])


_BY_SUB = Sql(select(users).where(users.c.sub == bindparam("sub")), "sub")
_name: BindParameter[str] = bindparam("name")
_BY_NAME = Sql(
    select(users)
    .where(or_(users.c.username == _name, users.c.sub == _name))
    .order_by((users.c.username == _name).desc())
    .limit(1),
    "name",
)
_ALL = Sql(select(users).order_by(users.c.created_at, users.c.username))
_INSERT = inserting(users, unless_conflict=True)


def _setting(column: str) -> Sql:
    """UPDATE of one column of a user and its `updated_at`, by sub."""
    assigned: dict[str, BindParameter[Any]] = {column: bindparam(column), "updated_at": bindparam("now")}
    return Sql(update(users).where(users.c.sub == bindparam("sub")).values(assigned), "sub", column, "now")


_SET_ENABLED = _setting("enabled")
_SET_PASSWORD_HASH = _setting("password_hash")
_SET_ROLES = _setting("roles")
# Their recovery codes, browser sessions and consents go with them (ON DELETE CASCADE).
_DELETE = Sql(delete(users).where(users.c.sub == bindparam("sub")).returning(users.c.sub), "sub")
_SET_REQUIRE_MFA = _setting("require_mfa")
_CLEAR_TOTP = Sql(
    update(users)
    .where(users.c.sub == bindparam("sub"))
    .values(totp_secret=None, totp_last_step=None, updated_at=bindparam("now")),
    "sub",
    "now",
)
_ENROL_TOTP = Sql(
    update(users)
    .where(users.c.sub == bindparam("sub"), users.c.totp_secret.is_(None))
    .values(totp_secret=bindparam("secret"), totp_last_step=bindparam("step"), updated_at=bindparam("now"))
    .returning(users.c.sub),
    "sub",
    "secret",
    "step",
    "now",
)
_USE_TOTP_STEP = Sql(
    update(users)
    .where(
        users.c.sub == bindparam("sub"),
        or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < bindparam("step")),
    )
    .values(totp_last_step=bindparam("step"))
    .returning(users.c.sub),
    "sub",
    "step",
)
_SPEND_RECOVERY_CODES = Sql(
    update(recovery_codes).where(recovery_codes.c.sub == bindparam("sub")).values(used_at=bindparam("now")),
    "sub",
    "now",
)
_INSERT_RECOVERY_CODE = inserting(recovery_codes, without=("id",))
_USE_RECOVERY_CODE = Sql(
    update(recovery_codes)
    .where(
        recovery_codes.c.sub == bindparam("sub"),
        recovery_codes.c.code_hash == bindparam("code_hash"),
        recovery_codes.c.used_at.is_(None),
    )
    .values(used_at=bindparam("now"))
    .returning(recovery_codes.c.id),
    "sub",
    "code_hash",
    "now",
)


async def get(on: Executor, sub: str) -> UserRow | None:
    return await record(on, _BY_SUB, UserRow, sub)


async def find(on: Executor, name: str) -> UserRow | None:
    """By username, or by `sub` (a username wins over another user's equal sub)."""
    return await record(on, _BY_NAME, UserRow, name)


async def list_all(on: Executor) -> list[UserRow]:
    """Every user, oldest first."""
    return await records(on, _ALL, UserRow)


async def insert(on: Executor, user: UserRow) -> bool:
    """Store a new user; False (nothing stored) if the username or sub is taken."""
    return bool(await rows(on, _INSERT, *values(user)))


async def set_enabled(on: Executor, sub: str, enabled: bool, now: int) -> None:
    await rows(on, _SET_ENABLED, sub, enabled, now)


async def set_password_hash(on: Executor, sub: str, password_hash: str, now: int) -> None:
    await rows(on, _SET_PASSWORD_HASH, sub, password_hash, now)


async def set_require_mfa(on: Executor, sub: str, required: bool, now: int) -> None:
    """Require a second factor of every sign-in of the user (True), or leave it to the policy."""
    await rows(on, _SET_REQUIRE_MFA, sub, required, now)


async def clear_totp(on: Executor, sub: str, now: int) -> None:
    """Forget the TOTP secret and its last step (the user enrols again)."""
    await rows(on, _CLEAR_TOTP, sub, now)


async def enrol_totp(on: Executor, sub: str, encrypted_secret: bytes, step: int, now: int) -> bool:
    """Store a TOTP secret and its first used step; False if one is enrolled already."""
    return bool(await rows(on, _ENROL_TOTP, sub, encrypted_secret, step, now))


async def use_totp_step(on: Executor, sub: str, step: int) -> bool:
    """Record `step` as used; False if it (or a later one) was used already (RFC 6238 §5.2)."""
    return bool(await rows(on, _USE_TOTP_STEP, sub, step))


async def spend_recovery_codes(on: Executor, sub: str, now: int) -> None:
    """Mark every recovery code of the user used (before new ones, or on an MFA reset)."""
    await rows(on, _SPEND_RECOVERY_CODES, sub, now)


async def add_recovery_code(on: Executor, sub: str, code_hash: str) -> None:
    await rows(on, _INSERT_RECOVERY_CODE, sub, code_hash, None)


async def use_recovery_code(on: Executor, sub: str, code_hash: str, now: int) -> bool:
    """Spend one unused recovery code; False when there is none with this hash."""
    return bool(await rows(on, _USE_RECOVERY_CODE, sub, code_hash, now))


async def set_roles(on: Executor, sub: str, roles: str, now: int) -> None:
    """Replace the user's roles (space-separated)."""
    await rows(on, _SET_ROLES, sub, roles, now)


async def delete_row(on: Executor, sub: str) -> bool:
    """Forget a user with their recovery codes, sessions and consents; False if there is none."""
    return bool(await rows(on, _DELETE, sub))
