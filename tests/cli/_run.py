"""Running `bastion` as scripts do: a real process, or in-process through Typer's runner."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from typer.testing import CliRunner

from bastion.cli import app


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any BASTION_* setting (test and CI switches stay)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_") or k.startswith("BASTION_TEST")}
    env.update(extra)
    return env


def bastion(*args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bastion ARGS` in a fresh process with only the given BASTION_* variables."""
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def invoke(*args: str, **env: str) -> Any:
    """Run the CLI in-process (same code, no interpreter start-up); stdout and stderr kept apart."""
    blank = {k: None for k in os.environ if k.startswith("BASTION_") and not k.startswith("BASTION_TEST")}
    return CliRunner().invoke(app, list(args), env={**blank, **env}, catch_exceptions=False)
