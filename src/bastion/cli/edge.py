"""`bastion edge`: the decision service behind nginx or Caddy, its configurations, its policy."""

from __future__ import annotations

import typer

from bastion.cli import edge_init

app = typer.Typer(help="The edge: nginx or Caddy carries the traffic, Bastion decides.", no_args_is_help=True)
app.command("init")(edge_init.init)
