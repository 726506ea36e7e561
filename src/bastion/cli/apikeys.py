"""`bastion apikeys`: API keys for calling systems (see bastion.guard.apikeys).

Keys are stored hashed in `<data dir>/apikeys.json`; the key itself is printed once, by
`create` and `rotate`, and never again. Exit codes: 0 success; 2 a wrong argument or key id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.guard.apikeys import ApiKeyManager, ApiKeyRecord, JsonFileApiKeyStore

app = typer.Typer(help="API keys: credentials for calling systems, never for users.", no_args_is_help=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default $BASTION_DATA_DIR or ./.bastion).", show_default=False),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _manager(data_dir: Path | None) -> ApiKeyManager:
    base = data_dir or Path(os.environ.get("BASTION_DATA_DIR", ".bastion"))
    return ApiKeyManager(JsonFileApiKeyStore(base / "apikeys.json"))


def _emit(data: dict[str, Any], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else text)


def _shown_once(key: str, record: ApiKeyRecord) -> dict[str, Any]:
    return {"api_key": key, **record.public()}


@app.command()
def create(
    owner: Annotated[str, typer.Option("--owner", help="The calling system this key identifies.")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="A scope (repeat, or space-separated).")] = None,
    expires_in: Annotated[float | None, typer.Option("--expires-in", help="Lifetime in seconds.")] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Create a key; it is shown once and stored only as a hash."""
    scopes = [s for item in scope or [] for s in item.split()]
    key, record = _manager(data_dir).create(owner, scopes, expires_in=expires_in)
    _emit(_shown_once(key, record), as_json, f"{key}\n(key id {record.key_id}; shown once, store it now)")


@app.command("list")
def list_keys(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List keys (ids, owners, scopes, last use), never the keys themselves."""
    records = _manager(data_dir).store.all()
    text = "\n".join(f"{r.key_id}  {r.owner}  {' '.join(r.scopes)}  last used {r.last_used_at}" for r in records)
    _emit({"keys": [r.public() for r in records]}, as_json, text or "no API keys")


@app.command()
def rotate(
    key_id: str,
    overlap: Annotated[float, typer.Option("--overlap", help="Seconds the old key keeps working.")] = 86_400.0,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Issue a successor key; the old one expires after the overlap."""
    try:
        key, record = _manager(data_dir).rotate(key_id, overlap=overlap)
    except KeyError:
        typer.echo(f"error: no active API key {key_id!r}", err=True)
        raise typer.Exit(2) from None
    _emit(_shown_once(key, record), as_json, f"{key}\n(key id {record.key_id}; replaces {key_id})")


@app.command()
def revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Stop a key now."""
    try:
        _manager(data_dir).revoke(key_id)
    except KeyError:
        typer.echo(f"error: no API key {key_id!r}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"revoked {key_id}")
