"""Registered clients and their secrets (`clients`, `client_secrets`): the only address of those
rows. The server reads them through its short per-process cache (`server.clients`); the CLI
writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, or_, select, update

from bastion.store._sql import Executor, Sql, inserting, record, records, rows, values
from bastion.store.models import client_secrets, clients


@dataclass(slots=True, frozen=True)
class ClientRow:
    client_id: str
    name: str
    client_type: str  # confidential | public
    auth_method: str
    grant_types: str  # space-separated
    scopes: str  # space-separated
    audiences: str  # space-separated URIs
    redirect_uris: str  # space-separated (browser flows)
    post_logout_redirect_uris: str  # space-separated (OpenID Connect RP-Initiated Logout 1.0 §3)
    id_token_signed_response_alg: str  # OpenID Connect Registration 1.0 §2
    pkce_optional_with_nonce: bool  # RFC 9700 §2.1.1, confidential OIDC clients only
    require_mfa: bool  # every code and device approval needs a second factor (acr urn:bastion:acr:mfa)
    token_lifetime: int | None  # minutes
    introspect: bool
    enabled: bool
    jwks: str | None
    jwks_uri: str | None
    token_endpoint_audience: bool
    created_at: int
    updated_at: int


@dataclass(slots=True, frozen=True)
class ClientSecretRow:
    id: int
    client_id: str
    secret_hash: str  # HMAC-SHA-256 hex under the pepper
    created_at: int
    expires_at: int | None


_by_id = clients.c.client_id == bindparam("client_id")
_secret_of = client_secrets.c.client_id == bindparam("client_id")

_GET = Sql(select(clients).where(_by_id), "client_id")
_ALL = Sql(select(clients).order_by(clients.c.created_at))
_INSERT = inserting(clients)
_SET_ENABLED = Sql(
    update(clients)
    .where(_by_id)
    .values(enabled=bindparam("enabled"), updated_at=bindparam("now"))
    .returning(clients.c.client_id),
    "client_id",
    "enabled",
    "now",
)
_PUBLIC_REDIRECT_URIS = Sql(
    select(clients.c.redirect_uris).where(clients.c.client_type == "public", clients.c.enabled.is_(True))
)
_VALID_SECRET_HASHES = Sql(
    select(client_secrets.c.secret_hash)
    .where(_secret_of, or_(client_secrets.c.expires_at.is_(None), client_secrets.c.expires_at > bindparam("now")))
    .order_by(client_secrets.c.id),
    "client_id",
    "now",
)
_ADD_SECRET = inserting(client_secrets, without=("id",))
# Every column but the key and the creation time: what an administrator may change.
_CHANGEABLE = tuple(c.name for c in clients.columns if c.name not in ("client_id", "created_at"))
_UPDATE = Sql(
    update(clients)
    .where(_by_id)
    .values({name: bindparam(name) for name in _CHANGEABLE})
    .returning(clients.c.client_id),
    "client_id",
    *_CHANGEABLE,
)
# Its secrets, consents and device codes go with it (ON DELETE CASCADE).
_DELETE = Sql(delete(clients).where(_by_id).returning(clients.c.client_id), "client_id")
_EXPIRE_SECRETS = Sql(
    update(client_secrets)
    .where(_secret_of, or_(client_secrets.c.expires_at.is_(None), client_secrets.c.expires_at > bindparam("at")))
    .values(expires_at=bindparam("at")),
    "client_id",
    "at",
)


async def get(on: Executor, client_id: str) -> ClientRow | None:
    return await record(on, _GET, ClientRow, client_id)


async def list_all(on: Executor) -> list[ClientRow]:
    """Every client, oldest first."""
    return await records(on, _ALL, ClientRow)


async def insert(on: Executor, client: ClientRow) -> None:
    await rows(on, _INSERT, *values(client))


async def set_enabled(on: Executor, client_id: str, enabled: bool, now: int) -> bool:
    """Enable or disable a client; False if there is no such client."""
    return bool(await rows(on, _SET_ENABLED, client_id, enabled, now))


async def public_redirect_uris(on: Executor) -> list[str]:
    """The registered redirect URIs of enabled public clients (the origins CORS allows)."""
    return [uri for (value,) in await rows(on, _PUBLIC_REDIRECT_URIS) for uri in value.split()]


async def valid_secret_hashes(on: Executor, client_id: str, now: int) -> list[str]:
    """The hashes of the client's secrets that have not expired at `now`."""
    return [secret_hash for (secret_hash,) in await rows(on, _VALID_SECRET_HASHES, client_id, now)]


async def add_secret(on: Executor, client_id: str, secret_hash: str, now: int) -> None:
    await rows(on, _ADD_SECRET, client_id, secret_hash, now, None)


async def expire_secrets(on: Executor, client_id: str, at: int) -> None:
    """End every current secret of the client at `at` (rotation overlap).

    A secret still inside an earlier rotation's overlap ends at `at` too when that is sooner:
    a rotation without overlap (a leaked secret) must stop every earlier secret at once.
    """
    await rows(on, _EXPIRE_SECRETS, client_id, at)


async def update_row(on: Executor, client: ClientRow) -> bool:
    """Store every changeable column of `client` (all but its id and creation time); False if
    there is no such client."""
    changed = {name: getattr(client, name) for name in _CHANGEABLE}
    return bool(await rows(on, _UPDATE, client.client_id, *changed.values()))


async def delete_row(on: Executor, client_id: str) -> bool:
    """Forget a client with its secrets, consents and device codes; False if there is none."""
    return bool(await rows(on, _DELETE, client_id))
