"""Administrative operations on clients: the one layer the CLI (`bastion clients`) and the admin
HTTP API (`server.admin_api`) share. Each change is audited with who made it (`Actor`)."""

from __future__ import annotations

import getpass
import json
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from bastion.events import audit
from bastion.keys import lifecycle
from bastion.protocol.errors import InvalidClientMetadata
from bastion.protocol.jose import DEFAULT_ID_TOKEN_ALGORITHM, ID_TOKEN_ALGORITHMS
from bastion.protocol.rfc7591 import check_jwks_uri, check_redirect_uri, check_redirect_uris_for_grants
from bastion.server.clients import (
    SecretHasher,
    generate_client_id,
    generate_client_secret,
)
from bastion.store import Database, clients, transaction
from bastion.store.clients import ClientRow

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = (
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
)
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


# RFC 3986 §2: a URI is printable US-ASCII without spaces.
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")


class AdminError(ValueError):
    """A request the CLI should refuse with this message (the API answers 400)."""


class UnknownObject(AdminError):
    """No such client, user, session or grant (the API answers 404)."""


class Conflict(AdminError):
    """The change would duplicate something unique (the API answers 409)."""


@dataclass(frozen=True)
class Actor:
    """Who performs an administrative action: an administrator's token, or the command line."""

    sub: str | None = None
    client_id: str | None = None
    via: str = "cli"

    def audit(self, event: str, **fields: Any) -> None:
        audit(event, actor_sub=self.sub, actor_client_id=self.client_id, via=self.via, **fields)


def _os_user() -> str | None:
    """The account running the command line: who acted, when no token says so."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return None


CLI = Actor(sub=None, client_id=None, via=f"cli:{_os_user() or 'unknown'}")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True)
class NewClient:
    name: str
    grants: tuple[str, ...]
    scope: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    auth_method: str = "client_secret_basic"
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    token_lifetime: int | None = None
    introspect: bool = False
    redirect_uris: tuple[str, ...] = ()
    token_endpoint_audience: bool = False
    post_logout_redirect_uris: tuple[str, ...] = ()
    id_token_alg: str = DEFAULT_ID_TOKEN_ALGORITHM
    pkce_optional_with_nonce: bool = False
    require_mfa: bool = False


def _check_uris(new: NewClient) -> None:
    """Every URI the client registers, by the one validator of `protocol.rfc7591`."""
    for option, uris in (
        ("--redirect-uri", new.redirect_uris),
        ("--post-logout-redirect-uri", new.post_logout_redirect_uris),
    ):
        for uri in uris:
            try:
                check_redirect_uri(uri)
            except InvalidClientMetadata as exc:
                raise AdminError(f"{option} {uri!r}: {exc.description}") from None
    if new.jwks_uri is not None:
        try:
            check_jwks_uri(new.jwks_uri)
        except InvalidClientMetadata as exc:
            raise AdminError(f"jwks_uri {new.jwks_uri!r}: {exc.description}") from None
    try:
        check_redirect_uris_for_grants(new.grants, new.redirect_uris)
    except InvalidClientMetadata as exc:
        raise AdminError(f"{exc.description}: add --redirect-uri URI") from None


def _check_new_client(new: NewClient) -> None:
    if not 1 <= len(new.name) <= 200 or not new.name.isprintable():
        raise AdminError("--name must be 1-200 printable characters")
    bad_scope = next((s for s in new.scope if not _SCOPE_TOKEN.fullmatch(s)), None)
    if bad_scope is not None:
        raise AdminError(f"--scope {bad_scope!r} is not a scope token (RFC 6749 §3.3)")
    if new.auth_method not in AUTH_METHODS:
        raise AdminError(f"--auth-method must be one of {', '.join(AUTH_METHODS)}")
    unknown = [g for g in new.grants if g not in GRANT_TYPES and g != "device_code"]
    if unknown:
        raise AdminError(f"unknown grant {unknown[0]}; known: {', '.join(GRANT_TYPES)}")
    if new.auth_method == "none" and "client_credentials" in new.grants:
        raise AdminError("a public client (--auth-method none) may not use client_credentials (RFC 6749 §4.4)")
    if new.auth_method == "private_key_jwt" and new.jwks is None and new.jwks_uri is None:
        raise AdminError("private_key_jwt needs --jwks FILE (or a jwks_uri)")
    if new.introspect and new.auth_method == "none":
        raise AdminError("--introspect needs an authenticating client; a public client (--auth-method none) cannot")
    if new.introspect and not new.audiences:
        # RFC 7662 §4: a resource server learns only about tokens for its own audiences; one
        # bound to none would learn nothing (or, before, everything).
        raise AdminError(
            "--introspect needs --audience: the resource URIs whose tokens this resource server may introspect"
        )
    if new.token_lifetime is not None and not 1 <= new.token_lifetime <= 60:
        raise AdminError("--token-lifetime must be 1-60 minutes")
    for audience in new.audiences:
        # Audiences are stored space-separated: one with a space would come back as two.
        if "://" not in audience or "#" in audience or not _PRINTABLE_ASCII.fullmatch(audience):
            raise AdminError(f"--audience {audience} must be an absolute URI without fragment (RFC 8707 §2)")
    _check_uris(new)
    if new.id_token_alg not in ID_TOKEN_ALGORITHMS:
        raise AdminError(f"--id-token-alg must be one of {', '.join(ID_TOKEN_ALGORITHMS)}")
    if new.pkce_optional_with_nonce and new.auth_method == "none":
        raise AdminError(
            "--pkce-optional-with-nonce is only for confidential clients; "
            "a public client (--auth-method none) always uses PKCE (RFC 9700 §2.1.1)"
        )


async def create_client(
    database: Database, hasher: SecretHasher, new: NewClient, *, actor: Actor = CLI
) -> dict[str, Any]:
    """Register a client; the returned dict holds the secret, shown exactly once."""
    _check_new_client(new)
    grants = tuple("urn:ietf:params:oauth:grant-type:device_code" if g == "device_code" else g for g in new.grants)
    now = int(time.time())
    client_id = generate_client_id()
    secret = generate_client_secret() if new.auth_method in SECRET_METHODS else None
    row = ClientRow(
        client_id=client_id,
        name=new.name,
        client_type="public" if new.auth_method == "none" else "confidential",
        auth_method=new.auth_method,
        grant_types=" ".join(dict.fromkeys(grants)),
        scopes=" ".join(dict.fromkeys(new.scope)),
        audiences=" ".join(new.audiences),
        redirect_uris=" ".join(dict.fromkeys(new.redirect_uris)),
        post_logout_redirect_uris=" ".join(dict.fromkeys(new.post_logout_redirect_uris)),
        id_token_signed_response_alg=new.id_token_alg,
        pkce_optional_with_nonce=new.pkce_optional_with_nonce,
        require_mfa=new.require_mfa,
        token_lifetime=new.token_lifetime,
        introspect=new.introspect,
        enabled=True,
        jwks=json.dumps(new.jwks) if new.jwks is not None else None,
        jwks_uri=new.jwks_uri,
        token_endpoint_audience=new.token_endpoint_audience,
        created_at=now,
        updated_at=now,
    )
    async with transaction(database) as tx:
        await clients.insert(tx, row)
        if secret is not None:
            await clients.add_secret(tx, client_id, hasher.hash(secret), now)
    actor.audit("client_created", client_id=client_id)
    result = describe(await _get(database, client_id))
    if secret is not None:
        result["client_secret"] = secret
    return result


async def missing_signing_key(database: Database, alg: str) -> str | None:
    """A warning when no key of `alg` signs now: ID tokens for a client registered for it fail
    (server_error) until one does. Not for RS256: `serve` refuses to start without that key."""
    if alg == DEFAULT_ID_TOKEN_ALGORITHM or not await lifecycle.inactive(database, [alg]):
        return None
    return (
        f"warning: no active {alg} signing key yet; ID tokens for this client fail until there is one: "
        f"run `bastion keys rotate --alg {alg}`"
    )


async def _get(database: Database, client_id: str) -> ClientRow:
    row = await clients.get(database, client_id)
    if row is None:
        raise UnknownObject(f"no client {client_id}")
    return row


def describe(row: ClientRow) -> dict[str, Any]:
    return {
        "client_id": row.client_id,
        "name": row.name,
        "client_type": row.client_type,
        "token_endpoint_auth_method": row.auth_method,
        "grant_types": row.grant_types.split(),
        "scope": row.scopes,
        "audiences": row.audiences.split(),
        "redirect_uris": row.redirect_uris.split(),
        "post_logout_redirect_uris": row.post_logout_redirect_uris.split(),
        "id_token_signed_response_alg": row.id_token_signed_response_alg,
        "pkce_optional_with_nonce": row.pkce_optional_with_nonce,
        "require_mfa": row.require_mfa,
        "access_token_lifetime_minutes": row.token_lifetime,
        "introspect": row.introspect,
        "enabled": row.enabled,
    }


async def list_clients(database: Database) -> list[dict[str, Any]]:
    return [describe(row) for row in await clients.list_all(database)]


async def show_client(database: Database, client_id: str) -> dict[str, Any]:
    return describe(await _get(database, client_id))


async def rotate_secret(
    database: Database, hasher: SecretHasher, client_id: str, overlap: int, *, actor: Actor = CLI
) -> dict[str, Any]:
    """A new secret; the old ones stay valid for `overlap` seconds (0: they stop at once)."""
    row = await _get(database, client_id)
    if row.auth_method not in SECRET_METHODS:
        raise AdminError(f"client {client_id} uses {row.auth_method}, which has no secret")
    secret = generate_client_secret()
    now = int(time.time())
    async with transaction(database) as tx:
        await clients.expire_secrets(tx, client_id, now + overlap)
        await clients.add_secret(tx, client_id, hasher.hash(secret), now)
    actor.audit("client_secret_rotated", client_id=client_id, overlap=overlap)
    return {
        "client_id": client_id,
        "client_secret": secret,
        "previous_secret_valid_until": now + overlap if overlap else now,
    }


async def set_enabled(database: Database, client_id: str, enabled: bool, *, actor: Actor = CLI) -> dict[str, Any]:
    if not await clients.set_enabled(database, client_id, enabled, int(time.time())):
        raise UnknownObject(f"no client {client_id}")
    actor.audit("client_enabled" if enabled else "client_disabled", client_id=client_id)
    return describe(await _get(database, client_id))


@dataclass(frozen=True)
class ClientChanges:
    """What an update changes; None leaves a setting as it is."""

    name: str | None = None
    scope: tuple[str, ...] | None = None
    audiences: tuple[str, ...] | None = None
    redirect_uris: tuple[str, ...] | None = None
    post_logout_redirect_uris: tuple[str, ...] | None = None
    token_lifetime: int | None = None
    require_mfa: bool | None = None
    introspect: bool | None = None
    enabled: bool | None = None

    def given(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if value is not None}


def _as_new(row: ClientRow) -> NewClient:
    """The registration a stored client amounts to, checked again as a whole after a change."""
    return NewClient(
        name=row.name,
        grants=tuple(row.grant_types.split()),
        scope=tuple(row.scopes.split()),
        audiences=tuple(row.audiences.split()),
        auth_method=row.auth_method,
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_uri=row.jwks_uri,
        token_lifetime=row.token_lifetime,
        introspect=row.introspect,
        redirect_uris=tuple(row.redirect_uris.split()),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris.split()),
        id_token_alg=row.id_token_signed_response_alg,
        pkce_optional_with_nonce=row.pkce_optional_with_nonce,
        require_mfa=row.require_mfa,
    )


async def update_client(
    database: Database, client_id: str, changes: ClientChanges, *, actor: Actor = CLI
) -> dict[str, Any]:
    """Change a client's settings (scopes, redirect URIs, ...); the result is checked by the same
    rules as a new registration. Running servers see it within client_cache_seconds."""
    row = await _get(database, client_id)
    given = changes.given()
    joined = {k: " ".join(dict.fromkeys(v)) for k, v in given.items() if isinstance(v, tuple)}
    renamed = {"scope": "scopes"}
    updated = replace(
        row,
        **{renamed.get(k, k): joined.get(k, v) for k, v in given.items()},
        updated_at=int(time.time()),
    )
    _check_new_client(_as_new(updated))
    if not await clients.update_row(database, updated):
        raise UnknownObject(f"no client {client_id}")
    actor.audit("client_updated", client_id=client_id, changed=sorted(given))
    return describe(updated)


async def delete_client(database: Database, client_id: str, *, actor: Actor = CLI) -> dict[str, Any]:
    """Forget a client: its secrets, consents and device codes go with it, and its tokens stop
    being accepted as its registration disappears from every server's cache."""
    if not await clients.delete_row(database, client_id):
        raise UnknownObject(f"no client {client_id}")
    actor.audit("client_deleted", client_id=client_id)
    return {"client_id": client_id, "deleted": True}
