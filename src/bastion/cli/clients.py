"""`bastion clients`: register and manage OAuth clients. Scripts rely on these names and the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli._common import (
    add_switch_commands,
    emit,
    fail,
    human,
    print_record,
    print_table,
    run,
    settings_for,
    with_database,
)
from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.config import Settings
from bastion.keys import startup
from bastion.protocol.jose import DEFAULT_ID_TOKEN_ALGORITHM
from bastion.server import admin
from bastion.server.clients import SecretHasher

app = typer.Typer(
    help="OAuth clients: create, list, show, update, delete, rotate-secret, disable.", no_args_is_help=True
)


def _hasher(settings: Settings) -> SecretHasher:
    return SecretHasher(startup.client_secret_pepper(settings))


def _print_client(data: dict[str, Any]) -> None:
    print_record(data)
    if "client_secret" in data:
        typer.echo("The client secret is shown only this once; store it now.", err=True)


def _admin(settings: Settings, action: Any) -> Any:
    try:
        return run(with_database(settings, action))
    except admin.AdminError as exc:
        raise fail(str(exc)) from None


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    grant: Annotated[
        list[str], typer.Option("--grant", help=f"Allowed grant type (repeatable): {', '.join(admin.GRANT_TYPES)}.")
    ],
    scope: Annotated[str, typer.Option("--scope", help='Allowed scopes, space-separated: "a b".')] = "",
    audience: Annotated[list[str] | None, typer.Option("--audience", help="Allowed resource URI (repeatable).")] = None,
    auth_method: Annotated[
        str, typer.Option(
            "--auth-method", help=f"Token endpoint auth method: {', '.join(admin.AUTH_METHODS)}."
        )
    ] = "client_secret_basic",
    jwks: Annotated[Path | None, typer.Option("--jwks", help="JWKS file for private_key_jwt.")] = None,
    token_lifetime: Annotated[
        int | None, typer.Option("--token-lifetime", help="Access-token lifetime, minutes.")
    ] = None,
    introspect: Annotated[bool, typer.Option("--introspect", help="A resource server that may introspect.")] = False,
    redirect_uri: Annotated[list[str] | None, typer.Option("--redirect-uri", help="Redirect URI (repeatable).")] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--post-logout-redirect-uri", help="Where logout may return the browser (repeatable)."),
    ] = None,
    token_endpoint_audience: Annotated[
        bool,
        typer.Option(
            "--accept-token-endpoint-aud", help="Compatibility: accept the token endpoint URL as assertion aud."
        ),
    ] = False,
    id_token_alg: Annotated[
        str, typer.Option("--id-token-alg", help="ID token signing algorithm: RS256 (default), PS256 or ES256.")
    ] = DEFAULT_ID_TOKEN_ALGORITHM,
    pkce_optional_with_nonce: Annotated[
        bool,
        typer.Option(
            "--pkce-optional-with-nonce",
            help="Confidential OIDC client: PKCE may be omitted when a nonce is sent (RFC 9700 §2.1.1).",
        ),
    ] = False,
    require_mfa: Annotated[
        bool,
        typer.Option(
            "--require-mfa",
            help="Every code and device approval for this client needs a sign-in with a second factor.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a client. The secret (for secret-based methods) is printed exactly once."""
    settings = settings_for(data_dir, config)
    jwks_data = None
    if jwks is not None:
        try:
            jwks_data = json.loads(jwks.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise fail(f"--jwks {jwks}: {exc}") from None
        if not isinstance(jwks_data, dict) or not isinstance(jwks_data.get("keys"), list):
            raise fail(f"--jwks {jwks}: not a JWK Set (an object with a 'keys' list)")
        if any("d" in k or "p" in k for k in jwks_data["keys"] if isinstance(k, dict)):
            raise fail(f"--jwks {jwks}: contains private key material; register public keys only")
    new = admin.NewClient(
        name=name,
        grants=tuple(grant),
        scope=tuple(scope.split()),
        audiences=tuple(audience or ()),
        auth_method=auth_method,
        jwks=jwks_data,
        token_lifetime=token_lifetime,
        introspect=introspect,
        redirect_uris=tuple(redirect_uri or ()),
        post_logout_redirect_uris=tuple(post_logout_redirect_uri or ()),
        token_endpoint_audience=token_endpoint_audience,
        id_token_alg=id_token_alg,
        pkce_optional_with_nonce=pkce_optional_with_nonce,
        require_mfa=require_mfa,
    )

    async def create_and_check(db: Any) -> tuple[dict[str, Any], str | None]:
        created = await admin.create_client(db, _hasher(settings), new)
        return created, await admin.missing_signing_key(db, new.id_token_alg)

    created, warning = _admin(settings, create_and_check)
    if warning is not None:
        typer.echo(warning, err=True)
    emit(created, as_json, _print_client)


@app.command("list")
def list_clients(data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every registered client."""
    settings = settings_for(data_dir, config)

    def table(rows: list[dict[str, Any]]) -> None:
        columns = ("client_id", "name", "client_type", "token_endpoint_auth_method", "grant_types", "enabled")
        headers = ("client_id", "name", "type", "auth method", "grants", "enabled")
        print_table(headers, ([human(r[c]) for c in columns] for r in rows))

    emit(_admin(settings, admin.list_clients), as_json, table)


@app.command("show")
def show(
    client_id: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """One client."""
    settings = settings_for(data_dir, config)
    emit(_admin(settings, lambda db: admin.show_client(db, client_id)), as_json, _print_client)


@app.command("rotate-secret")
def rotate_secret(
    client_id: str,
    overlap: Annotated[int | None, typer.Option("--overlap", help="Seconds the old secret stays valid.")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a new secret; the old one stops at once, or after --overlap seconds."""
    settings = settings_for(data_dir, config)
    seconds = settings.client_secret_rotation_overlap if overlap is None else overlap
    if not 0 <= seconds <= 30 * 86400:
        raise fail("--overlap must be 0-2592000 seconds")
    emit(
        _admin(settings, lambda db: admin.rotate_secret(db, _hasher(settings), client_id, seconds)),
        as_json,
        _print_client,
    )


def _set_enabled(client_id: str, enabled: bool, data_dir: Path | None, config: Path | None, as_json: bool) -> None:
    settings = settings_for(data_dir, config)
    emit(_admin(settings, lambda db: admin.set_enabled(db, client_id, enabled)), as_json, _print_client)


add_switch_commands(
    app,
    "client_id",
    _set_enabled,
    disable="Disable a client: it stops authenticating within client_cache_seconds everywhere.",
    enable="Enable a disabled client again.",
)


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


@app.command("update")
def update(
    client_id: str,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    scope: Annotated[str | None, typer.Option("--scope", help='Allowed scopes, replaced: "a b".')] = None,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", help="Resource URI (repeatable, replaces).")
    ] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="Redirect URI (repeatable, replaces).")
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--post-logout-redirect-uri", help="Post-logout redirect URI (repeatable, replaces)."),
    ] = None,
    token_lifetime: Annotated[
        int | None, typer.Option("--token-lifetime", help="Access-token lifetime, minutes.")
    ] = None,
    require_mfa: Annotated[
        bool | None, typer.Option("--require-mfa/--no-require-mfa", help="Second factor for every sign-in.")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a client's settings; each option given replaces that setting (running servers see it
    within client_cache_seconds)."""
    settings = settings_for(data_dir, config)
    changes = admin.ClientChanges(
        name=name,
        scope=None if scope is None else tuple(scope.split()),
        audiences=_tuple(audience),
        redirect_uris=_tuple(redirect_uri),
        post_logout_redirect_uris=_tuple(post_logout_redirect_uri),
        token_lifetime=token_lifetime,
        require_mfa=require_mfa,
    )
    if not changes.given():
        raise fail("nothing to change: give at least one option (see --help)")
    emit(_admin(settings, lambda db: admin.update_client(db, client_id, changes)), as_json, _print_client)


@app.command("delete")
def delete(
    client_id: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Delete a client with its secrets, consents and device codes."""
    settings = settings_for(data_dir, config)
    emit(_admin(settings, lambda db: admin.delete_client(db, client_id)), as_json, _print_client)
