"""`bastion users`: people who log in through the browser pages. Scripts rely on these names."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli._common import (
    add_switch_commands,
    emit,
    fail,
    human,
    print_record,
    print_table,
    run,
    settings_for,
    with_database,
)
from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.config import Settings
from bastion.identity import NewUser, PasswordHasher, UserError, WeakPassword, users
from bastion.identity.users import User
from bastion.server import admin_people
from bastion.server.admin import AdminError
from bastion.server.denylist import AccessTokenDenylist

app = typer.Typer(
    help="Users: create, list, show, delete, disable, enable, set-password, set-mfa, reset-mfa.", no_args_is_help=True
)

PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")
]


def _set_password(
    data_dir: Path | None,
    config: Path | None,
    password_stdin: bool,
    as_json: bool,
    change: Callable[[Any, PasswordHasher, str], Awaitable[User]],
) -> None:
    """Read a password, run `change(db, hasher, password)` (a new user, a new password) with a
    hasher closed afterwards, and print the user."""
    settings = settings_for(data_dir, config)
    password = _read_password(password_stdin)

    async def action(db: Any) -> dict[str, Any]:
        hasher = PasswordHasher(settings.password_hashing)
        try:
            return users.describe(await change(db, hasher, password))
        finally:
            hasher.close()

    emit(_admin(settings, action), as_json, _print_user)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise fail("the password is empty")
    return password


def _admin(settings: Settings, action: Any) -> Any:
    try:
        return run(with_database(settings, action))
    except (UserError, WeakPassword, AdminError) as exc:
        raise fail(str(exc)) from None


def _print_user(data: dict[str, Any]) -> None:
    print_record(data)


@app.command("create")
def create(
    username: Annotated[str, typer.Option("--username", help="Login name (unique).")],
    email: Annotated[str, typer.Option("--email", help="Email address.")] = "",
    email_verified: Annotated[bool, typer.Option("--email-verified", help="Mark the email as verified.")] = False,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    role: Annotated[list[str] | None, typer.Option("--role", help="Role (repeatable).")] = None,
    require_mfa: Annotated[
        bool,
        typer.Option("--require-mfa", help="Every sign-in needs a second factor, whatever the server's --mfa policy."),
    ] = False,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user with a stable random subject identifier (`sub`)."""
    new = NewUser(
        username=username,
        email=email,
        email_verified=email_verified,
        display_name=name,
        roles=tuple(role or ()),
        require_mfa=require_mfa,
    )
    _set_password(
        data_dir, config, password_stdin, as_json, lambda db, hasher, pw: users.create_user(db, hasher, new, pw)
    )


@app.command("list")
def list_users(data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every user."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> list[dict[str, Any]]:
        return [users.describe(u) for u in await users.list_users(db)]

    def table(rows: list[dict[str, Any]]) -> None:
        columns = ("sub", "username", "email", "roles", "mfa", "enabled")
        print_table(columns, ([human(r[c]) for c in columns] for r in rows))

    emit(_admin(settings, action), as_json, table)


@app.command("show")
def show(user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One user, by username or sub."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return users.describe(await users.require_user(db, user))

    emit(_admin(settings, action), as_json, _print_user)


def _set_enabled(user: str, enabled: bool, data_dir: Path | None, config: Path | None, as_json: bool) -> None:
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return users.describe(await users.set_enabled(db, user, enabled))

    emit(_admin(settings, action), as_json, _print_user)


add_switch_commands(
    app,
    "user",
    _set_enabled,
    disable="Disable a user: their sessions end and their refresh tokens stop working at once.",
    enable="Enable a disabled user again.",
)


@app.command("set-password")
def set_password(
    user: str,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a new password (checked against the password policy)."""
    _set_password(
        data_dir, config, password_stdin, as_json, lambda db, hasher, pw: users.set_password(db, hasher, user, pw)
    )


class MfaRequirement(StrEnum):
    required = "required"
    default = "default"


@app.command("set-mfa")
def set_mfa(
    user: str,
    requirement: Annotated[
        MfaRequirement,
        typer.Argument(
            help="required: every sign-in needs a second factor, whatever the server's --mfa policy; "
            "default: the policy decides."
        ),
    ],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Require a second factor of this user at every sign-in, or leave it to the server's policy."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return users.describe(await users.set_require_mfa(db, user, requirement is MfaRequirement.required))

    emit(_admin(settings, action), as_json, _print_user)


@app.command("reset-mfa")
def reset_mfa(
    user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Remove the user's authenticator and recovery codes; they enrol again when a second factor is next needed."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return users.describe(await users.reset_mfa(db, user))

    emit(_admin(settings, action), as_json, _print_user)


@app.command("delete")
def delete(user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Delete a user: their grants are revoked; sessions, consents and recovery codes deleted."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return await admin_people.delete_user(db, AccessTokenDenylist(db, None), user)

    emit(_admin(settings, action), as_json, _print_user)
