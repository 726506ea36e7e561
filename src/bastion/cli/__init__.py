"""The `bastion` command: one Typer application with a sub-application per area."""

from __future__ import annotations

import os

import typer

from bastion.cli import apikeys, audit, clients, db, demo, device_login, keys, serve, sessions, threats, users

app = typer.Typer(
    name="bastion",
    help="Bastion: OAuth 2 / OpenID Connect server, API guard, rate limiting, threat modeling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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


def main() -> None:
    """Entry point of the `bastion` console script.

    Every file the command writes is its owner's alone (the SQLite database and its -wal/-shm,
    secrets, API keys, audit trails, the recorded issuer, reports): a umask of 077 makes that the
    default for files and directories created by any code path, beside the explicit modes
    where those files are created.
    """
    os.umask(0o077)
    app()


__all__ = ["app", "main"]
