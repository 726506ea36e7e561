"""What every command shares: options, settings, the database, and clean failures (exit 2)."""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.config import ConfigError, ConfigWarning, Settings, load_settings
from bastion.store import Database, DatabaseUnavailable, MigrationFailed, MigrationRequired

T = TypeVar("T")

def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def settings_for(data_dir: Path | None, config: Path | None, **overrides: Any) -> Settings:
    """Settings from flags, environment and config file; problems exit 2, warnings print once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        try:
            settings = load_settings(config_file=config, overrides={"data_dir": data_dir, **overrides})
        except ConfigError as exc:
            raise fail(str(exc)) from None
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    return settings


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
