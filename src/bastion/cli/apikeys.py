"""`bastion apikeys`: API keys for calling systems (see bastion.guard.apikeys).

Keys live in Bastion's database (table `api_keys`, SQLite in the data directory or PostgreSQL),
stored hashed; the key itself is printed once, by `create` and `rotate`, and never again. An API
checks them from any host with `bastion.guard.apikeys.DatabaseApiKeyVerifier`.

Keys of the previous release, in `<data dir>/apikeys.json`, are imported into the database by
the first command that finds the file, which is then renamed `apikeys.json.imported` so it is
never imported twice. Exit codes: 0 success; 2 a wrong argument, key id or setting.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli._common import emit, fail, run, settings_for, with_database
from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.guard.apikeys import ApiKeyRecord
from bastion.server import admin_apikeys
from bastion.server.admin import AdminError
from bastion.server.admin_apikeys import row_of
from bastion.store import Database
from bastion.store import api_keys as store
from bastion.store.api_keys import ApiKeyRow

app = typer.Typer(help="API keys: credentials for calling systems, never for users.", no_args_is_help=True)

LEGACY_FILE = "apikeys.json"


def _legacy_rows(path: Path) -> list[ApiKeyRow]:
    try:
        raw = json.loads(path.read_text())
        return [row_of(ApiKeyRecord(**{**r, "scopes": tuple(r["scopes"])})) for r in raw["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise fail(f"{path} is not an API key file of a previous release ({exc}); move it away") from None


async def _import_legacy(database: Database, data_dir: Path) -> None:
    """Import `<data dir>/apikeys.json` once, then rename it so that it is never imported again."""
    path = data_dir / LEGACY_FILE
    if not path.is_file():
        return
    added = await store.import_keys(database, _legacy_rows(path))
    done = path.with_name(LEGACY_FILE + ".imported")
    try:
        path.replace(done)
    except FileNotFoundError:
        return  # another process imported it at the same time (its keys were kept once)
    typer.echo(f"imported {added} API key(s) from {path} into the database; the file is now {done}", err=True)


def _on_database(data_dir: Path | None, config: Path | None, action: Any) -> Any:
    settings = settings_for(data_dir, config)

    async def imported_then(database: Database) -> Any:
        await _import_legacy(database, settings.data_dir)
        return await action(database)

    try:
        return run(with_database(settings, imported_then))
    except AdminError as exc:
        raise fail(str(exc)) from None


def _when(seconds: int | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print_created(data: dict[str, Any]) -> None:
    typer.echo(data["api_key"])
    replaces = f"; replaces {data['replaces']}" if "replaces" in data else ""
    typer.echo(f"(key id {data['key_id']}{replaces}; shown once, store it now)", err=True)


def _print_list(data: dict[str, Any]) -> None:
    if not data["keys"]:
        typer.echo("no API keys")
    for k in data["keys"]:
        state = "revoked" if k["revoked_at"] is not None else "no expiry"
        if k["revoked_at"] is None and k["expires_at"] is not None:
            state = f"expires {_when(k['expires_at'])}"
        typer.echo(
            f"{k['key_id']}  {k['owner']}  scopes: {' '.join(k['scopes']) or '-'}  {state}"
            f"  last used {_when(k['last_used_at'])}"
        )


@app.command()
def create(
    owner: Annotated[str, typer.Option("--owner", help="The calling system this key identifies.")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="A scope (repeat, or space-separated).")] = None,
    expires_in: Annotated[int | None, typer.Option("--expires-in", help="Lifetime in seconds.")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; it is shown once and stored only as a hash."""

    async def created(database: Database) -> dict[str, Any]:
        return await admin_apikeys.create_key(database, owner, scope or [], expires_in)

    emit(_on_database(data_dir, config, created), as_json, _print_created)


@app.command("list")
def list_keys(data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List keys (ids, owners, scopes, last use), never the keys themselves."""

    async def listed(database: Database) -> dict[str, Any]:
        return {"keys": await admin_apikeys.list_keys(database)}

    emit(_on_database(data_dir, config, listed), as_json, _print_list)


@app.command()
def rotate(
    key_id: str,
    overlap: Annotated[
        int, typer.Option("--overlap", help="Seconds the old key keeps working.")
    ] = admin_apikeys.DEFAULT_OVERLAP,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a successor key; the old one expires after the overlap."""

    async def rotated(database: Database) -> dict[str, Any]:
        return await admin_apikeys.rotate_key(database, key_id, overlap)

    emit(_on_database(data_dir, config, rotated), as_json, _print_created)


@app.command()
def revoke(key_id: str, data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Stop a key now (APIs see it within their verifier's cache_seconds)."""

    async def revoked(database: Database) -> dict[str, Any]:
        return await admin_apikeys.revoke_key(database, key_id)

    _on_database(data_dir, config, revoked)
    typer.echo(f"revoked {key_id}")
