"""The `bastion` command: one Typer application with a sub-application per area."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from bastion import __version__
from bastion.cli import (
    apikeys,
    audit,
    clients,
    db,
    demo,
    device_login,
    edge,
    keys,
    serve,
    sessions,
    threats,
    users,
)

app = typer.Typer(
    name="bastion",
    help="Bastion: OAuth 2 / OpenID Connect server, API guard, rate limiting, threat modeling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bastion {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    """Bastion: OAuth 2 / OpenID Connect server, API guard, rate limiting, threat modeling."""


app.command("serve")(serve.serve)
app.command("device-login")(device_login.device_login)
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(threats.app, name="threats")
app.add_typer(users.app, name="users")
app.add_typer(sessions.app, name="sessions")
app.add_typer(demo.app, name="demo")
app.add_typer(audit.app, name="audit")
app.add_typer(apikeys.app, name="apikeys")
app.add_typer(edge.app, name="edge")


def main() -> None:
    """Entry point of the `bastion` console script.

    Every file the command writes is its owner's alone (the SQLite database and its -wal/-shm,
    secrets, API keys, audit trails, the recorded issuer, reports): a umask of 077 makes that the
    default for files and directories created by any code path, beside the explicit modes
    where those files are created.
    """
    os.umask(0o077)
    command = typer.main.get_command(app)
    _plain_help(command)
    # Help in click's plain layout, up to 100 columns: it wraps descriptions and never cuts an
    # option's name (the boxed layout shortened `--post-logout-redirect-uri` to fit 80 columns).
    sys.exit(command.main(prog_name="bastion", max_content_width=100, standalone_mode=True))


def _plain_help(command: Any) -> None:
    """Every command and group prints click's plain help rather than the boxed one."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


__all__ = ["app", "main"]
