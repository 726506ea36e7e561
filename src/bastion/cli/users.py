"""`bastion users`: people who log in through the browser pages. Scripts rely on these names."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli._common import ConfigOption, DataDirOption, JsonOption, emit, fail, run, settings_for, with_database
from bastion.config import Settings
from bastion.identity import NewUser, PasswordHasher, UserError, WeakPassword, users
from bastion.identity.users import User

app = typer.Typer(help="Users: create, list, show, disable, enable, set-password, reset-mfa.", no_args_is_help=True)

PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")
]


def _with_password(settings: Settings, change: Callable[[Any, PasswordHasher], Awaitable[User]]) -> dict[str, Any]:
    """Run `change(db, hasher)` (a new user, a new password) with a hasher closed afterwards."""

    async def action(db: Any) -> dict[str, Any]:
        hasher = PasswordHasher(settings.password_hashing)
        try:
            return users.describe(await change(db, hasher))
        finally:
            hasher.close()

    result: dict[str, Any] = _admin(settings, action)
    return result


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
    except (UserError, WeakPassword) as exc:
        raise fail(str(exc)) from None


def _print_user(data: dict[str, Any]) -> None:
    for key, value in data.items():
        typer.echo(f"{key}: {value}")


@app.command("create")
def create(
    username: Annotated[str, typer.Option("--username", help="Login name (unique).")],
    email: Annotated[str, typer.Option("--email", help="Email address.")] = "",
    email_verified: Annotated[bool, typer.Option("--email-verified", help="Mark the email as verified.")] = False,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    role: Annotated[list[str] | None, typer.Option("--role", help="Role (repeatable).")] = None,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user with a stable random subject identifier (`sub`)."""
    settings = settings_for(data_dir, config)
    password = _read_password(password_stdin)
    new = NewUser(
        username=username, email=email, email_verified=email_verified, display_name=name, roles=tuple(role or ())
    )
    created = _with_password(settings, lambda db, hasher: users.create_user(db, hasher, new, password))
    emit(created, as_json, _print_user)


@app.command("list")
def list_users(data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every user."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> list[dict[str, Any]]:
        return [users.describe(u) for u in await users.list_users(db)]

    def table(rows: list[dict[str, Any]]) -> None:
        out = Table("sub", "username", "email", "roles", "mfa", "enabled")
        for r in rows:
            out.add_row(r["sub"], r["username"], r["email"], " ".join(r["roles"]), r["mfa"], str(r["enabled"]))
        Console().print(out)

    emit(_admin(settings, action), as_json, table)


@app.command("show")
def show(user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One user, by username or sub."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return users.describe(await users.require_user(db, user))

    emit(_admin(settings, action), as_json, _print_user)


def _set_enabled(user: str, enabled: bool, data_dir: Any, config: Any, as_json: bool) -> None:
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return users.describe(await users.set_enabled(db, user, enabled))

    emit(_admin(settings, action), as_json, _print_user)


@app.command("disable")
def disable(
    user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Disable a user: their sessions end and their refresh tokens stop working at once."""
    _set_enabled(user, False, data_dir, config, as_json)


@app.command("enable")
def enable(user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Enable a disabled user again."""
    _set_enabled(user, True, data_dir, config, as_json)


@app.command("set-password")
def set_password(
    user: str,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a new password (checked against the password policy)."""
    settings = settings_for(data_dir, config)
    password = _read_password(password_stdin)
    changed = _with_password(settings, lambda db, hasher: users.set_password(db, hasher, user, password))
    emit(changed, as_json, _print_user)


@app.command("reset-mfa")
def reset_mfa(
    user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Remove the user's authenticator and recovery codes; they enrol again at the next login."""
    settings = settings_for(data_dir, config)

    async def action(db: Any) -> dict[str, Any]:
        return users.describe(await users.reset_mfa(db, user))

    emit(_admin(settings, action), as_json, _print_user)
