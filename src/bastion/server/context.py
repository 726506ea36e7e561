"""Everything an endpoint needs, built once per process from Settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from bastion.config import Settings, is_loopback_host
from bastion.keys import KeyEncryptor, KeyRing
from bastion.keys.lifecycle import key_ring
from bastion.protocol.errors import InvalidClient
from bastion.protocol.rfc7523 import AssertionPolicy
from bastion.server.clients import Client, ClientRegistry, SecretHasher
from bastion.server.limits import ServerLimits, build_limiter
from bastion.server.people import PeopleServices
from bastion.store import Database, revocations

# Resource servers without database access read revocations under this documented key scheme.
REVOKED_KEY = "bastion:revoked:jti:{jti}"


@dataclass
class ServerContext:
    settings: Settings
    database: Database
    keyring: KeyRing
    clients: ClientRegistry
    hasher: SecretHasher
    assertion_policy: AssertionPolicy
    redis: Redis | None = None
    limits: ServerLimits | None = None
    people: PeopleServices | None = None
    _jwks_cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _next_purge: int = 0

    def purge_due(self, now: int, every: int = 60) -> bool:
        """True at most once per `every` seconds: expired codes and requests are swept then,
        not on every issuance."""
        if now < self._next_purge:
            return False
        self._next_purge = now + every
        return True

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def endpoint(self, path: str) -> str:
        return self.settings.issuer.rstrip("/") + path

    # Client authentication limits (wired to bastion.ratelimit when it is configured).
    async def check_client_auth_limits(self, client_id: str | None, source: str) -> None:
        if self.limits is not None:
            await self.limits.check_client_auth(client_id, source)

    async def record_client_auth_failure(self, client_id: str | None, source: str) -> None:
        if self.limits is not None:
            await self.limits.record_client_auth_failure(client_id, source)

    async def client_authenticated(self, path: str, client_id: str, source: str) -> None:
        if self.limits is not None:
            await self.limits.authenticated(path, client_id, source)

    async def use_assertion_once(self, client_id: str, jti: str, exp: int) -> bool:
        return await revocations.use_assertion(self.database, client_id, jti, exp, int(time.time()))

    async def fetch_client_jwks(self, client: Client) -> dict[str, Any]:
        """A client's jwks_uri, cached for five minutes."""
        uri = client.jwks_uri
        if uri is None:
            raise InvalidClient(detail="client has no registered keys")
        cached = self._jwks_cache.get(uri)
        if cached is not None and time.monotonic() - cached[0] < 300:
            return cached[1]
        host = httpx.URL(uri).host
        if not uri.startswith("https://") and not is_loopback_host(host):
            raise InvalidClient(detail="jwks_uri must be https")
        try:
            async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
                response = await http.get(uri)
                response.raise_for_status()
                jwks: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise InvalidClient(detail=f"cannot fetch jwks_uri: {exc}") from exc
        self._jwks_cache[uri] = (time.monotonic(), jwks)
        return jwks

    async def revoke_access_token(self, jti: str, client_id: str, exp: int) -> None:
        now = int(time.time())
        await revocations.record(self.database, jti, client_id, exp, now)
        if self.redis is not None and exp > now:
            await self.redis.set(REVOKED_KEY.format(jti=jti), str(exp), ex=exp - now)

    async def is_revoked(self, jti: str) -> bool:
        if self.redis is not None and await self.redis.exists(REVOKED_KEY.format(jti=jti)):
            return True
        return await revocations.is_revoked(self.database, jti)

    async def close(self) -> None:
        if self.people is not None:
            self.people.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.limits is not None:
            await self.limits.limiter.aclose()
        await self.database.dispose()


def build_context(
    settings: Settings, database: Database, encryptor: KeyEncryptor, pepper: bytes, limits: ServerLimits | None = None
) -> ServerContext:
    keyring = key_ring(database, encryptor, cache_seconds=settings.key_cache_seconds, leeway=settings.clock_leeway)
    redis = Redis.from_url(settings.redis_url.reveal()) if settings.redis_url is not None else None
    return ServerContext(
        settings=settings,
        database=database,
        keyring=keyring,
        clients=ClientRegistry(database, settings.client_cache_seconds),
        hasher=SecretHasher(pepper),
        assertion_policy=AssertionPolicy(
            issuer=settings.issuer,
            token_endpoint=settings.issuer.rstrip("/") + "/token",
            accept_token_endpoint_audience=False,
            max_lifetime=settings.client_assertion_max_lifetime,
            leeway=settings.clock_leeway,
        ),
        redis=redis,
        limits=limits if limits is not None else ServerLimits(build_limiter(settings)),
        people=PeopleServices(settings, encryptor),
    )
