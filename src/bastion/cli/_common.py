"""What every command shares: options, settings, the database, and clean failures (exit 2)."""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.config import ConfigError, ConfigWarning, Settings, load_settings
from bastion.ratelimit import Policy
from bastion.store import Database, DatabaseUnavailable, MigrationFailed, MigrationRequired

T = TypeVar("T")

def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def settings_for(
    data_dir: Path | None,
    config: Path | None,
    *,
    creates_data: bool = False,
    listening: bool = False,
    tls: bool = False,
    **overrides: Any,
) -> Settings:
    """Settings from flags, environment and config file; problems exit 2, warnings print once.

    A command that only reads or changes existing data (every command but `serve` and
    `db upgrade`, which `creates_data`) refuses a data directory that does not exist when the
    database lives in it: a typo in `--data-dir` would otherwise open a new, empty database.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        try:
            settings = load_settings(
                config_file=config, overrides={"data_dir": data_dir, **overrides}, listening=listening, tls=tls
            )
            if not creates_data:
                require_data_dir(settings)
        except ConfigError as exc:
            raise fail(str(exc)) from None
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    return settings


def require_data_dir(settings: Settings) -> None:
    """Refuse a data directory that does not exist when the SQLite database would be made in it."""
    if settings.database_url is not None or settings.data_dir.is_dir():
        return
    raise ConfigError(
        "data_dir",
        f"{settings.data_dir.resolve()} does not exist (no Bastion data there)",
        "check the path (or BASTION_DATA_DIR), or create the data with `bastion serve` or `bastion db upgrade`",
        source=settings.sources.get("data_dir", "default ./.bastion"),
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; configuration and database problems exit 2 with a clear message."""
    try:
        return asyncio.run(coro)
    except (ConfigError, DatabaseUnavailable, MigrationFailed, MigrationRequired) as exc:
        raise fail(str(exc)) from None


async def with_database(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database (migrating SQLite, checking PostgreSQL), run `action`, close."""
    database = Database(settings.resolved_database_url, pool_size=2)
    try:
        await database.check_reachable()
        if database.is_sqlite:
            await database.upgrade()
        else:
            await database.require_migrated()
        return await action(database)
    finally:
        await database.dispose()


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        human(data)


# Fields holding seconds since the epoch: shown as dates to people (JSON keeps the numbers).
_TIME_FIELDS = ("_at", "_until", "_since", "expires", "created", "updated")


def when(seconds: float | None) -> str:
    """An epoch time as people read it: `2026-12-03 14:05:09 UTC`; `-` when there is none."""
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def human(value: Any, field: str = "") -> str:
    """A value as text for people: lists joined with commas, no `None`, `yes`/`no`, dates for
    the epoch times of fields named like `created_at` or `signs_until`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and field.endswith(_TIME_FIELDS):
        return when(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(human(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={human(v, str(k))}" for k, v in value.items()) if value else "(none)"
    return str(value)


def print_record(data: dict[str, Any]) -> None:
    """One `field: value` line per field, aligned, values as `human` shows them."""
    width = max((len(str(key)) for key in data), default=0)
    for key, value in data.items():
        typer.echo(f"{str(key) + ':':<{width + 1}} {human(value, str(key))}")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Rows under their headers in plain aligned columns: never cut (an id is copied from here),
    at any terminal width, and easy to read with `awk`."""
    body = [list(map(str, row)) for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in body]) for i, h in enumerate(headers)]
    for row in [list(headers), *body]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def describe_policies(policies: Iterable[Policy]) -> list[str]:
    """The rate-limit policies in force, one line each: `token_per_client: 100 per 60 s by
    client_id on /token`."""
    lines = []
    for p in policies:
        where = f" on {', '.join(p.routes)}" if p.routes else ""
        lines.append(f"{p.name}: {p.limit} per {p.window:g} s by {', '.join(p.key)}{where}")
    return lines or ["none"]


Switch = Callable[[str, bool, Path | None, Path | None, bool], None]


def add_switch_commands(app: typer.Typer, metavar: str, switch: Switch, *, disable: str, enable: str) -> None:
    """`disable NAME` and `enable NAME` on `app`, both calling `switch(name, enabled, data_dir,
    config, as_json)`; `disable` and `enable` are their help texts."""

    def disable_command(
        name: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
    ) -> None:
        switch(name, False, data_dir, config, as_json)

    def enable_command(
        name: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
    ) -> None:
        switch(name, True, data_dir, config, as_json)

    for command, help_text in ((disable_command, disable), (enable_command, enable)):
        # The argument's name in help (user, client_id) differs per command group.
        command.__annotations__["name"] = Annotated[str, typer.Argument(metavar=metavar, show_default=False)]
        app.command(command.__name__.removesuffix("_command"), help=help_text)(command)
