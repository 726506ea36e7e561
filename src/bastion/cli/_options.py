"""The options every command takes: `--data-dir`, `--config` and `--json`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default ./.bastion).", show_default=False)
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file.", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, diagnostics on stderr.")]
