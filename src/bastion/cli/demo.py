"""`bastion demo`: the example API's helpers (development mode only)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bastion.cli._common import fail, run, settings_for
from bastion.cli._options import ConfigOption, DataDirOption
from bastion.devdemo import demo_token
from bastion.server import open_context

app = typer.Typer(help="The example API served at /demo in development mode.", no_args_is_help=True)


@app.command("token")
def token(
    user: Annotated[str, typer.Option("--user", help="A seeded demo user: alice, bob, carol (admin) or dave.")],
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope",
            help="Scopes, space-separated (default: the role's; carol, the admin, also gets notes:admin).",
        ),
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Print a genuine access token for a demo user, from the running server's issuer (stdout: the token only)."""
    settings = settings_for(data_dir, config)
    if not settings.development_mode:
        raise fail("demo users exist only in development mode (SQLite data directory, loopback issuer)")

    async def go() -> str:
        ctx = await open_context(settings)
        try:
            return await demo_token(ctx, user, None if scope is None else tuple(scope.split()))
        finally:
            await ctx.close()

    try:
        sys.stdout.write(run(go()) + "\n")
    except LookupError as exc:
        raise fail(str(exc.args[0])) from None
