"""The client registry as the server sees it: immutable snapshots, cached for a few seconds.

The CLI writes to the database while the server runs; every process reloads a client at most
`client_cache_seconds` after it last did, so a disabled client or a rotated secret stops working
within that time everywhere. Unknown clients are never cached, so a new client works at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bastion.config import is_loopback_host
from bastion.protocol.errors import InvalidClient
from bastion.protocol.jose import DEFAULT_ID_TOKEN_ALGORITHM
from bastion.protocol.rfc7591 import is_valid_redirect_uri
from bastion.store import Database
from bastion.store import clients as registered
from bastion.store.clients import ClientRow

JWKS_URI_CACHE_SECONDS = 300


def generate_client_id() -> str:
    """128 random bits, URL-safe; never starting with `-`, which a command line reads as an option."""
    while True:
        client_id = secrets.token_urlsafe(16)
        if not client_id.startswith("-"):
            return client_id


def generate_client_secret() -> str:
    """256 bits in the URL-safe base64 alphabet: no `+ / = %`, so it survives form and Basic encoding."""
    return secrets.token_urlsafe(32)


class SecretHasher:
    """Keyed hash of client secrets (HMAC-SHA-256 under a server pepper).

    High-entropy generated secrets do not need a slow password hash; the pepper keeps a stolen
    table useless without the server's configuration.
    """

    def __init__(self, pepper: bytes) -> None:
        # Keyed once; each hash copies the keyed state instead of re-deriving the HMAC pads.
        self._keyed = hmac.new(pepper, digestmod=hashlib.sha256)

    def hash(self, secret: str) -> str:
        mac = self._keyed.copy()
        mac.update(secret.encode())
        return mac.hexdigest()

    def matches(self, secret: str, hashes: tuple[str, ...]) -> bool:
        candidate = self.hash(secret)
        # Compare against every hash without stopping early: constant time in the secret.
        found = False
        for stored in hashes:
            found |= hmac.compare_digest(candidate, stored)
        return found


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    client_type: str
    auth_method: str
    grant_types: frozenset[str]
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    token_lifetime: int | None
    introspect: bool
    enabled: bool
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    token_endpoint_audience: bool
    post_logout_redirect_uris: tuple[str, ...] = ()
    id_token_signed_response_alg: str = DEFAULT_ID_TOKEN_ALGORITHM
    pkce_optional_with_nonce: bool = False
    require_mfa: bool = False
    secret_hashes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def is_public(self) -> bool:
        return self.client_type == "public"

    @classmethod
    def from_row(cls, row: ClientRow, secret_hashes: list[str]) -> Client:
        return cls(
            client_id=row.client_id,
            name=row.name,
            client_type=row.client_type,
            auth_method=row.auth_method,
            grant_types=frozenset(row.grant_types.split()),
            scopes=tuple(row.scopes.split()),
            audiences=tuple(row.audiences.split()),
            redirect_uris=_valid_uris(row.redirect_uris),
            token_lifetime=row.token_lifetime,
            introspect=row.introspect,
            enabled=row.enabled,
            jwks=json.loads(row.jwks) if row.jwks else None,
            jwks_uri=row.jwks_uri,
            token_endpoint_audience=row.token_endpoint_audience,
            post_logout_redirect_uris=_valid_uris(row.post_logout_redirect_uris),
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            pkce_optional_with_nonce=row.pkce_optional_with_nonce,
            require_mfa=row.require_mfa,
            secret_hashes=tuple(secret_hashes),
        )


def _valid_uris(stored: str) -> tuple[str, ...]:
    """The stored redirect URIs that pass today's registration rule (`protocol.rfc7591`): a row
    written before it (`javascript:`, plain http to a public host, a URI split at its spaces) is
    never a place the browser is sent; the authorization endpoint then answers that the
    redirect_uri is not registered, on a page, without redirecting."""
    return tuple(uri for uri in stored.split() if is_valid_redirect_uri(uri))


class ClientRegistry:
    """Reads clients through a short per-process cache."""

    def __init__(self, database: Database, cache_seconds: float) -> None:
        self._database = database
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Client]] = {}
        self._loading: dict[str, tuple[float, asyncio.Future[Client | None]]] = {}
        self._jwks: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, client_id: str) -> Client | None:
        cached = self._cache.get(client_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        if self._cache_seconds <= 0:
            return await self._load(client_id, now)
        # When the entry expires under load, every request in flight would query the database
        # at once (and queue for the pool); they share the one load already under way instead.
        # It started after the entry expired, so what it returns is as fresh as the cache allows.
        loading = self._loading.get(client_id)
        if loading is None or now - loading[0] >= self._cache_seconds:
            loading = (now, asyncio.ensure_future(self._load(client_id, now)))
            self._loading[client_id] = loading
            loading[1].add_done_callback(self._forget(client_id, loading))
        # A caller that goes away must not cancel the load the others are waiting for.
        return await asyncio.shield(loading[1])

    def _forget(
        self, client_id: str, loading: tuple[float, asyncio.Future[Client | None]]
    ) -> Callable[[asyncio.Future[Client | None]], None]:
        def done(future: asyncio.Future[Client | None]) -> None:
            if self._loading.get(client_id) is loading:
                del self._loading[client_id]
            if not future.cancelled():
                future.exception()  # retrieved here: every waiter may have gone away

        return done

    async def jwks(self, client: Client) -> dict[str, Any]:
        """The keys a `private_key_jwt` client registered: its JWKS, or its `jwks_uri` fetched
        (https only, except on loopback; no redirects) and kept five minutes.

        Raises:
            InvalidClient: no keys registered, or the jwks_uri cannot be fetched.
        """
        if client.jwks is not None:
            return client.jwks
        uri = client.jwks_uri
        if uri is None:
            raise InvalidClient(detail="client has no registered keys")
        cached = self._jwks.get(uri)
        if cached is not None and time.monotonic() - cached[0] < JWKS_URI_CACHE_SECONDS:
            return cached[1]
        if not uri.startswith("https://") and not is_loopback_host(httpx.URL(uri).host):
            raise InvalidClient(detail="jwks_uri must be https")
        try:
            async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
                response = await http.get(uri)
                response.raise_for_status()
                jwks: object = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise InvalidClient(detail=f"cannot fetch jwks_uri: {exc}") from exc
        if not isinstance(jwks, dict):
            # RFC 7517 §5: a JWK Set is a JSON object; a list or a string is no key set.
            raise InvalidClient(detail="jwks_uri did not answer a JWK Set (a JSON object)")
        self._jwks[uri] = (time.monotonic(), jwks)
        return jwks

    async def _load(self, client_id: str, now: float) -> Client | None:
        row = await registered.get(self._database, client_id)
        if row is None:
            self._cache.pop(client_id, None)
            return None
        hashes = await registered.valid_secret_hashes(self._database, client_id, int(time.time()))
        client = Client.from_row(row, hashes)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[client_id] = (now, client)
        return client
