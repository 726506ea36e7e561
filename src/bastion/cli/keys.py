"""`bastion keys`: list, rotate and retire signing keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bastion.cli._common import emit, fail, human, print_table, run, settings_for, when, with_database
from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.config import Settings
from bastion.keys import lifecycle, startup
from bastion.store import Database

app = typer.Typer(help="Signing keys: list, rotate, retire.", no_args_is_help=True)


def _table(rows: list[dict[str, Any]]) -> None:
    columns = ("kid", "alg", "state", "activates_at", "signs_until", "published")
    print_table(columns, ([human(row[c], c) for c in columns] for row in rows))


async def _rotate(settings: Settings, database: Database, alg: str) -> dict[str, Any]:
    lifecycle.check_algorithm(alg)
    return await lifecycle.rotate(database, startup.key_encryptor(settings), alg, settings.key_prepublication)


@app.command("list")
def list_keys(data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every stored key with its state (pending, active, retired, expired)."""
    settings = settings_for(data_dir, config)
    emit(run(with_database(settings, lambda db: lifecycle.describe_all(db, settings.clock_leeway))), as_json, _table)


@app.command("rotate")
def rotate(
    alg: Annotated[str, typer.Option("--alg", help="ES256, RS256 or PS256.")] = "ES256",
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a key: published now, signing after key_prepublication (at once when none signs)."""
    settings = settings_for(data_dir, config)
    try:
        result = run(with_database(settings, lambda db: _rotate(settings, db, alg)))
    except lifecycle.KeyLifecycleError as exc:
        raise fail(str(exc)) from None
    emit(result, as_json, lambda r: typer.echo(f"new {r['alg']} key {r['kid']} signs from {when(r['activates_at'])}"))


@app.command("retire")
def retire(kid: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Stop a key signing now; it stays published until its tokens have expired.

    A kid is an RFC 7638 thumbprint and may start with "-": put it after `--`
    (`bastion keys retire -- -Xy...`)."""
    settings = settings_for(data_dir, config)
    try:
        result = run(with_database(settings, lambda db: lifecycle.retire(db, kid)))
    except lifecycle.KeyLifecycleError as exc:
        raise fail(str(exc)) from None
    emit(result, as_json, lambda r: typer.echo(f"key {r['kid']} retired at {when(r['retired_at'])}"))
