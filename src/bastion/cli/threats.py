"""`bastion threats`: threat modeling from the command line (see bastion.threatmodel)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Threat modeling: STRIDE per element, DREAD, OWASP API Top 10.", no_args_is_help=True)
