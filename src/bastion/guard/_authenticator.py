"""The I/O wrapper around the validator: discovery, JWKS caching and refresh, API keys.

Discovery (OpenID Connect Discovery 1.0 §4 / RFC 8414 §3) happens at start-up or on first use;
the JWKS is refreshed when its cache lifetime ends and when a token names an unknown `kid`, at
most once per `refresh_interval` per issuer, so a flood of random kids cannot hammer the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bastion.guard._denylist import Denylist
from bastion.guard._feeds import run_periodically
from bastion.guard._fetch import FetchError, fetch_json, new_http_client
from bastion.guard._principal import Principal
from bastion.guard._validator import BearerTokenValidator
from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose import cache_lifetime, keyset_from_jwks, looks_like_jws
from bastion.protocol.rfc6750 import B64TOKEN
from bastion.protocol.rfc8414 import discovery_matches
from bastion.protocol.rfc9068 import DEFAULT_LEEWAY, AccessToken, TrustedIssuer, UnknownIssuer, UnknownKey

__all__ = [
    "Authenticator",
    "IssuerConfig",
    "OpaqueTokenIntrospector",
    "RevocationFeed",
    "run_periodically",
]

log = logging.getLogger("bastion.guard")


_WELL_KNOWN = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """One trusted issuer, by its discovery URL and the audience this API expects.

    `client_id` and `client_secret` are this API's resource-server credentials at the issuer
    (a Bastion client registered with `--introspect`): given them, the `Authenticator` follows
    the issuer's revocations by default, polling `revocations_url` (by default the issuer's
    `/revocations`, Bastion's revocation list) every `revocation_interval` seconds.
    """

    discovery_url: str
    audience: str
    legacy: bool = False
    leeway: float = DEFAULT_LEEWAY
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    revocations_url: str | None = None

    def revocation_list(self) -> str:
        """Where this issuer lists its revocations: `revocations_url`, else `{issuer}/revocations`."""
        if self.revocations_url is not None:
            return self.revocations_url
        base = self.discovery_url
        for suffix in _WELL_KNOWN:
            if base.endswith(suffix):
                base = base.removesuffix(suffix)
                break
        return base.rstrip("/") + "/revocations"


class RevocationFeed(Protocol):
    """A revocation channel (see `bastion.guard.revocation`): `poll()` feeds the denylist."""

    async def poll(self) -> int: ...


class OpaqueTokenIntrospector(Protocol):
    """Something that turns an opaque token into a principal (see `IntrospectionClient`)."""

    async def introspect(self, token: str) -> Principal: ...


@dataclass(slots=True)
class _IssuerState:
    config: IssuerConfig
    issuer: str | None = None
    jwks_uri: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    last_attempt: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Authenticator:
    """Authenticate bearer tokens (and optionally API keys) for one API."""

    def __init__(
        self,
        issuers: Sequence[IssuerConfig] = (),
        *,
        static_issuers: Iterable[tuple[TrustedIssuer, Mapping[str, Any]]] = (),
        http: httpx.AsyncClient | None = None,
        cache_size: int = 10_000,
        refresh_interval: float = 30.0,
        jwks_min_age: float = 60.0,
        jwks_max_age: float = 86_400.0,
        jwks_default_age: float = 300.0,
        denylist: Denylist | None = None,
        introspector: OpaqueTokenIntrospector | None = None,
        revocation_feeds: Sequence[RevocationFeed] = (),
        revocation_interval: float = 5.0,
        redis_url: str | None = None,
        follow_revocations: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Revocation arguments (the others configure discovery, keys and caches):

        Args:
            revocation_feeds: revocation channels fed into `denylist` (built by hand).
            redis_url: the authorization server's Redis: listen to its revocation channel
                (falling back to the issuers' revocation lists while it is down).
            follow_revocations: with an issuer's resource-server credentials or `redis_url`,
                follow revocations without `revocation_feeds` (the default); False turns off
                only this automatic feed.
        """
        self.clock = clock
        self.validator = BearerTokenValidator(cache_size=cache_size, denylist=denylist, clock=clock)
        for trusted, jwks in static_issuers:
            # Static keys never go stale: they are configuration, not a fetched document.
            keys = keyset_from_jwks(jwks, fetched_at=clock(), max_age=float("inf"))
            self.validator.trust(trusted, keys)
        for issuer_config in issuers:
            # Known before discovery, so that a feed started first keeps entries long enough.
            self.denylist.keep_for(issuer_config.leeway)
        self._states = [_IssuerState(c) for c in issuers]
        self._by_issuer: dict[str, _IssuerState] = {}
        self._http = http
        self._own_http = http is None
        self.refresh_interval = refresh_interval
        self._ages = (jwks_default_age, jwks_min_age, jwks_max_age)
        self._next_stale_check = float("-inf")
        self.introspector = introspector
        self.fetches = 0  # metadata + JWKS requests made, for tests and metrics
        self.revocation_feeds = list(revocation_feeds)
        self.revocation_interval = revocation_interval
        self._follow = follow_revocations and not self.revocation_feeds and (
            redis_url is not None or any(c.client_id and c.client_secret for c in issuers)
        )
        self._redis_url = redis_url
        self._redis: Any = None
        self._built_feeds = False  # revocation_feeds came from _default_feeds (rebuilt per start)
        self._feed_tasks: list[asyncio.Task[None]] = []
        # Token string -> (Principal, exp, jti) for the hot path: one dict lookup instead of the
        # validator's lookup plus a new Principal per request. Same bound and lifetime rules as
        # its cache; exp and jti are copied out so that a hit reads no attribute chains.
        self._principals: dict[str, tuple[Principal, float, str | None]] = {}
        self._principals_max = cache_size
        self._revoked = self.denylist.ids
        self.denylist.on_revoke(self._forget_jti)

    @property
    def denylist(self) -> Denylist:
        """The local revocation list the validator consults."""
        return self.validator.denylist

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = new_http_client()
        return self._http

    async def start(self) -> None:
        """Discover every configured issuer now (failures are logged and retried later)."""
        self._start_feeds()
        await asyncio.gather(*(self._discover(s, force=True) for s in self._states))

    @property
    def follows_revocations(self) -> bool:
        """Whether revocation feeds run (given by hand, or built from credentials or Redis)."""
        return bool(self.revocation_feeds) or self._follow

    def _default_feeds(self) -> list[RevocationFeed]:
        """The feeds built from the issuers' credentials and the Redis URL (`follow_revocations`)."""
        # Imported here: the Redis client is loaded only by an API that follows revocations.
        from bastion.guard.revocation import HttpRevocationPoller, RedisRevocationSubscriber

        polls: list[RevocationFeed] = [
            HttpRevocationPoller(
                c.revocation_list(),
                client_id=c.client_id,
                client_secret=c.client_secret,
                denylist=self.denylist,
                http=self._client(),
            )
            for c in (s.config for s in self._states)
            if c.client_id and c.client_secret
        ]
        if self._redis_url is None:
            return polls
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self._redis_url, socket_timeout=5, socket_connect_timeout=5)
        fallback = _AllOf(polls) if polls else None
        return [
            RedisRevocationSubscriber(
                self._redis, denylist=self.denylist, fallback=fallback, fallback_interval=self.revocation_interval
            )
        ]

    def _start_feeds(self) -> None:
        # Started here or on the first request, whichever comes first: a sub-application
        # mounted under another app never sees a lifespan start-up.
        if self._follow:
            self._follow, self._built_feeds = False, True
            self.revocation_feeds = self._default_feeds()
        if self._feed_tasks or not self.revocation_feeds:
            return
        self._feed_tasks = [
            asyncio.create_task(
                run_periodically(feed, self.revocation_interval, denylist=self.denylist, clock=self.clock)
            )
            for feed in self.revocation_feeds
        ]

    async def aclose(self) -> None:
        """Stop the revocation feeds; close the HTTP client if the authenticator created it."""
        for task in self._feed_tasks:
            task.cancel()
        await asyncio.gather(*self._feed_tasks, return_exceptions=True)
        self._feed_tasks = []
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._built_feeds:
            # Their clients are closed here: a later start builds them again.
            self.revocation_feeds, self._follow, self._built_feeds = [], True, False
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _discover(self, state: _IssuerState, *, force: bool = False) -> None:
        async with state.lock:
            now = self.clock()
            if not force and now - state.last_attempt < self.refresh_interval:
                return
            state.last_attempt = now
            try:
                self.fetches += 1
                meta = (await fetch_json(self._client(), state.config.discovery_url)).document
                issuer, jwks_uri = meta.get("issuer"), meta.get("jwks_uri")
                if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
                    raise FetchError("metadata lacks issuer or jwks_uri")
                if not discovery_matches(state.config.discovery_url, issuer):
                    raise FetchError(f"metadata issuer {issuer!r} does not match its URL")
                state.issuer, state.jwks_uri, state.metadata = issuer, jwks_uri, meta
                self.validator.trust(
                    TrustedIssuer(issuer, state.config.audience, state.config.legacy, state.config.leeway)
                )
                self._by_issuer[issuer] = state
                await self._fetch_jwks(state, now)
            except FetchError as exc:
                log.warning("guard: discovery of %s failed: %s", state.config.discovery_url, exc)

    async def _fetch_jwks(self, state: _IssuerState, now: float) -> None:
        if state.issuer is None or state.jwks_uri is None:
            return
        self.fetches += 1
        fetched = await fetch_json(self._client(), state.jwks_uri)
        default, minimum, maximum = self._ages
        age = cache_lifetime(fetched.cache_control, default=default, minimum=minimum, maximum=maximum)
        self.validator.set_keys(state.issuer, keyset_from_jwks(fetched.document, fetched_at=now, max_age=age))
        self._next_stale_check = float("-inf")

    async def _refresh_keys(self, state: _IssuerState) -> bool:
        """Refetch an issuer's JWKS unless that was tried within `refresh_interval`."""
        async with state.lock:
            now = self.clock()
            if now - state.last_attempt < self.refresh_interval:
                return False
            state.last_attempt = now
            try:
                await self._fetch_jwks(state, now)
            except FetchError as exc:
                # Keep the keys we have (fail closed only for kids we never saw).
                log.warning("guard: JWKS refresh of %s failed: %s", state.issuer, exc)
                return False
            return True

    async def _refresh_stale(self, now: float) -> None:
        soonest = float("inf")
        for issuer, state in self._by_issuer.items():
            keys = self.validator.keys(issuer)
            if keys is None or keys.stale(now):
                await self._refresh_keys(state)
                keys = self.validator.keys(issuer)
            if keys is not None:
                soonest = min(soonest, keys.fetched_at + keys.max_age)
        self._next_stale_check = max(soonest, now + min(self.refresh_interval, 1.0))

    def _forget_jti(self, jti: str) -> None:
        for key in [k for k, (_, _, known_jti) in self._principals.items() if known_jti == jti]:
            del self._principals[key]

    def _remember(self, token: str, access: AccessToken) -> Principal:
        principal = Principal.from_token(access)
        if self._principals_max > 0:
            if len(self._principals) >= self._principals_max:
                del self._principals[next(iter(self._principals))]
            # exp as a float: the clock gives floats, and float < float is the cheap comparison.
            self._principals[token] = (principal, float(access.expires_at), access.jti)
        return principal

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before, still unexpired and not revoked."""
        try:
            principal, expires_at, jti = self._principals[token]
        except KeyError:
            return None
        now = self.clock()
        # Valid until exp, never past a revocation (revocations also evict, see _forget_jti).
        if now < expires_at and jti not in self._revoked:
            if now < self._next_stale_check:
                return principal
            return None  # let authenticate_bearer refresh stale keys first
        del self._principals[token]
        return None

    async def authenticate_bearer(self, token: str) -> Principal:
        """Validate a bearer token and return its principal.

        Raises:
            InvalidToken: the token is not acceptable.
        """
        if (self.revocation_feeds or self._follow) and not self._feed_tasks:
            self._start_feeds()
        now = self.clock()
        if now >= self._next_stale_check:
            await self._refresh_stale(now)
        known = self._principals.get(token)
        if known is not None:
            # Valid until exp, never past a revocation (revocations also evict, see _forget_jti).
            principal, expires_at, jti = known
            if now < expires_at and jti not in self._revoked:
                return principal
            del self._principals[token]
        if not looks_like_jws(token):
            if B64TOKEN.fullmatch(token) is None:
                raise InvalidToken("not a b64token (RFC 6750 §2.1)")
            if self.introspector is None:
                raise InvalidToken("opaque token and no introspection configured")
            return await self.introspector.introspect(token)
        try:
            return self._remember(token, self.validator.validate(token, now))
        except UnknownKey as exc:
            state = self._by_issuer.get(exc.issuer)
            if state is None or not await self._refresh_keys(state):
                raise
        except UnknownIssuer:
            pending = [s for s in self._states if s.issuer is None]
            if not pending:
                raise
            await asyncio.gather(*(self._discover(s) for s in pending))
        return self._remember(token, self.validator.validate(token, self.clock()))

    def issuer_metadata(self, issuer: str) -> dict[str, Any]:
        """The discovery document of a trusted issuer (empty if not discovered)."""
        state = self._by_issuer.get(issuer)
        return dict(state.metadata) if state else {}

    def token_endpoints(self) -> list[str]:
        """Where callers can obtain tokens, for the "Basic is not accepted" message."""
        return [
            str(s.metadata["token_endpoint"]) for s in self._states if isinstance(s.metadata.get("token_endpoint"), str)
        ]


class _AllOf:
    """Several polled feeds as one (the Redis subscriber's fallback: every issuer's list)."""

    def __init__(self, feeds: Sequence[RevocationFeed]) -> None:
        self.feeds = list(feeds)

    async def poll(self) -> int:
        return sum([await feed.poll() for feed in self.feeds])
