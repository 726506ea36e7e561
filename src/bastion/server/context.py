"""What the server's endpoints share, built once per process from Settings: the settings, the
database, the key ring, the client registry, the secret hasher, the client-assertion policy,
the access-token denylist, the rate limits, the people services and the refresh-token rotations
left unanswered."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from bastion.config import Settings
from bastion.keys import KeyEncryptor, KeyRing
from bastion.keys.lifecycle import key_ring
from bastion.protocol.rfc7523 import AssertionPolicy
from bastion.server.clients import ClientRegistry, SecretHasher
from bastion.server.denylist import AccessTokenDenylist
from bastion.server.limits import ServerLimits, build_limiter
from bastion.server.people import PeopleServices
from bastion.server.unanswered import UnansweredRotations
from bastion.store import Database


@dataclass
class ServerContext:
    settings: Settings
    database: Database
    keyring: KeyRing
    clients: ClientRegistry
    hasher: SecretHasher
    assertion_policy: AssertionPolicy
    denylist: AccessTokenDenylist
    limits: ServerLimits
    people: PeopleServices
    unanswered: UnansweredRotations

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def endpoint(self, path: str) -> str:
        return self.settings.issuer.rstrip("/") + path

    async def close(self) -> None:
        self.people.close()
        await self.denylist.aclose()
        await self.limits.limiter.aclose()
        await self.database.dispose()


def build_context(
    settings: Settings, database: Database, encryptor: KeyEncryptor, pepper: bytes, limits: ServerLimits | None = None
) -> ServerContext:
    keyring = key_ring(database, encryptor, cache_seconds=settings.key_cache_seconds, leeway=settings.clock_leeway)
    redis = None
    if settings.redis_url is not None:
        # Bounded like the rate-limit store's: a Redis that hangs is an outage (the denylist
        # falls back to the database), not a request that waits for TCP to give up.
        redis = Redis.from_url(settings.redis_url.reveal(), socket_timeout=0.5, socket_connect_timeout=0.5)
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
        denylist=AccessTokenDenylist(database, redis),
        limits=limits if limits is not None else ServerLimits(build_limiter(settings)),
        people=PeopleServices(settings, encryptor, pepper),
        unanswered=UnansweredRotations(redis, settings.refresh_token_idle_lifetime),
    )
