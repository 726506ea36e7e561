"""The decision service: nginx `auth_request` and Caddy `forward_auth` ask `/decide` about each request.

One pipeline, cheapest and most anonymous checks first, each a refusal the proxy passes on:
the peer (only the proxy may ask), the raw URI (ambiguous 400, query 414), the route (404, 405),
the declared body (413, 415), the client certificate (403), the credentials through the guard's
own core (401, 403 `insufficient_scope`, 403 `forbidden`), then the quotas (429). The guard's
`RequestGuard` validates tokens against the issuer's JWKS with its verified-token cache and
follows revocations; the rate limiter counts quotas in memory or Redis. A dependency the decision
needs and cannot reach (the issuer's keys, Redis) is 503, never 500, and the proxy fails closed.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import ipaddress
import json
import logging
from base64 import b64decode, urlsafe_b64encode
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.edge.cache import CacheKey, DecisionCache
from bastion.edge.paths import MethodNotAllowed, Router, accept
from bastion.edge.policy import METHODS, Policy
from bastion.edge.policy import Route as PolicyRoute
from bastion.events import audit, bind_source
from bastion.guard import (
    RBAC,
    Authenticator,
    GuardError,
    IssuerConfig,
    Principal,
    RequestGuard,
    extract_credentials,
    require_scopes,
)
from bastion.guard._core import ApiKeyVerifier
from bastion.guard.request_id import RequestIdMiddleware, TrustedPeers
from bastion.protocol.errors import InvalidRequest, OAuthError
from bastion.protocol.rfc9068 import UnknownIssuer, UnknownKey
from bastion.ratelimit import Decision, MemoryStore, RateLimiter, RedisStore, Store, rate_limit_headers
from bastion.ratelimit import Policy as RatePolicy
from bastion.ratelimit.headers import reset_seconds, retry_after_seconds

__all__ = ["Edge", "build_app"]

log = logging.getLogger("bastion.edge")

LOOPBACK = ("127.0.0.0/8", "::1/128")
# Passed by nginx only (auth_request answers 2xx, 401 and 403): any other refusal is sent as 403
# with the real status in X-Bastion-Status, which nginx's error_page turns back.
STATUS_VIA = "x-bastion-status-via"
# Set (overwritten) by the proxy: two copies mean a proxy that appends, or a client's copy slipping
# through beside the proxy's, and which one a reader takes differs.
PROXY_HEADERS = (
    b"x-forwarded-method", b"x-forwarded-uri", b"x-forwarded-for", b"x-client-cert",
    b"x-original-content-length", b"content-length", b"content-type",
    b"x-forwarded-host", b"x-forwarded-proto", b"x-request-id", b"x-bastion-status-via",
)
# Quotas up to this limit are counted exactly (see Edge._rate_policies).
EXACT_UP_TO = 100
IDENTITY = (
    "X-Bastion-Sub", "X-Bastion-Client-Id", "X-Bastion-Scope", "X-Bastion-Roles", "X-Bastion-Api-Key-Id",
    "X-Bastion-Cert-Thumbprint",
)
# Printable ASCII but `%`: identity values are percent-encoded past it, so a claim holding a
# newline or non-Latin-1 text can never split or break a header.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


class Refusal(OAuthError):
    """A refusal of the edge's own (413, 415, 429, 503): status, code and headers given."""

    def __init__(self, status: int, error: str, description: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(description, detail=error)
        self.status = status
        self.code = error
        self.headers = list(headers)


class CredentialRefusal(Exception):
    """The guard refused the credentials: answered with its RFC 6750 challenge (other refusals
    are not about tokens and carry none)."""

    def __init__(self, error: OAuthError) -> None:
        super().__init__(error.error)
        self.error = error


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the decision answers: a status, its headers, a JSON body (empty when allowed)."""

    status: int
    headers: list[tuple[str, str]]
    body: dict[str, Any] | None = None


def _thumbprint(value: str) -> str:
    """RFC 8705 §3.1 `x5t#S256`: the SHA-256 of the certificate's DER, base64url without padding.

    `value` is the URL-escaped PEM nginx passes (`$ssl_client_escaped_cert`), or the certificate's
    DER in base64 (Caddy's `{http.request.tls.client.certificate_der_base64}`); parsed either way,
    so a header that is not a certificate is refused rather than hashed.
    """
    text = unquote(value)
    try:
        if text.startswith("-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(text.encode("ascii"))
        else:
            certificate = x509.load_der_x509_certificate(b64decode(text, validate=True))
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise InvalidRequest("The client certificate header is not a certificate.",
                             detail="bad X-Client-Cert") from None
    der = certificate.public_bytes(Encoding.DER)
    return urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def _plain(value: str) -> bool:
    """Whether `value` is already header-safe (printable ASCII without `%`): written as is."""
    return value.isascii() and value.isprintable() and "%" not in value
def _client_address(forwarded: bytes, peer: str) -> str:
    """The client's address, in one spelling: the last X-Forwarded-For hop (the one the proxy wrote,
    should it append), normalised so that one address is one quota counter.

    Raises:
        InvalidRequest: the hop is not an IP address (a port, a name, garbage).
    """
    hop = forwarded.decode("latin-1").split(",")[-1].strip()
    if not hop:
        return peer
    try:
        address = ipaddress.ip_address(hop)
    except ValueError:
        raise InvalidRequest("X-Forwarded-For does not end with an IP address.",
                             detail=f"x-forwarded-for {hop[:64]!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _counted_network(address: str) -> str:
    """What a per-address quota counts: the address, or for IPv6 its /64, the prefix one
    subscriber is given (RFC 6177): a client rotating through its 2^64 addresses is one client."""
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


class _RememberedPeers(TrustedPeers):
    """TrustedPeers answering each address once: the proxy has a few, and parsing one per
    request (twice: here and for the request id) was a tenth of a decision's CPU."""

    def __init__(self, entries: Sequence[str]) -> None:
        super().__init__(entries)
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        verdict = self._verdicts.get(host)
        if verdict is None:
            if len(self._verdicts) >= 1024:
                self._verdicts.clear()
            verdict = self._verdicts[host] = super().__contains__(host)
        return verdict


class Edge:
    """The decision pipeline for one policy, with the guard and the limiter it runs on."""

    def __init__(self, policy: Policy, *, api_keys: ApiKeyVerifier | None = None) -> None:
        self.policy = policy
        self.router = Router(policy.routes)
        self.peers = _RememberedPeers([*LOOPBACK, *(str(n) for n in policy.trusted_proxies)])
        secret = policy.client_secret.reveal() if policy.client_secret is not None else None
        issuer = IssuerConfig(policy.issuer + "/.well-known/openid-configuration", audience=policy.audience,
                              client_id=policy.client_id, client_secret=secret)
        self.authenticator = Authenticator([issuer], redis_url=policy.redis)
        self.guard = RequestGuard(self.authenticator, rbac=self._rbac(), api_keys=api_keys or self._api_keys(),
                                  realm=policy.audience)
        self.requirements = [
            require_scopes(*r.scopes, permissions=(f"route{i}",) if r.roles else (),
                           accept=("token", "api_key") if r.api_key else ("token",))
            for i, r in enumerate(policy.routes)
        ]
        store: Store = RedisStore(policy.redis, key_prefix="bastion:edge:") if policy.redis else MemoryStore()
        self.limiter = RateLimiter(store, self._rate_policies())
        # Per route: (limiter policy name, who is counted) of each quota, built once.
        self.quotas = [tuple((self._quota_name(i, j), q.per) for j, q in enumerate(r.quotas))
                       for i, r in enumerate(policy.routes)]
        seconds = policy.decision_cache_seconds
        self.cache = DecisionCache(seconds) if seconds > 0 else None

    def _rbac(self) -> RBAC:
        # "At least one of the listed roles": each role grants the permission of the routes
        # that list it, so the guard's RoleRequired names the roles that would do.
        grants: dict[str, list[str]] = {}
        for i, route in enumerate(self.policy.routes):
            for role in route.roles:
                grants.setdefault(role, []).append(f"route{i}")
        return RBAC.from_mapping(grants)

    def _api_keys(self) -> ApiKeyVerifier | None:
        source = self.policy.api_keys
        if source is None:
            return None
        from bastion.guard import apikeys

        if source.file is not None:
            return apikeys.ApiKeyManager(apikeys.JsonFileApiKeyStore(source.file))
        return apikeys.DatabaseApiKeyVerifier(str(source.database))

    def _rate_policies(self) -> list[RatePolicy]:
        # The weighted sliding-window counter floors its estimate of the previous window, so
        # just past a boundary it admits one more than the limit: `1 a day` took a request at
        # 23:59:59 and another at 00:00:00. Small limits, where one is a large share, are
        # counted exactly (a sliding log, O(limit) per key); above EXACT_UP_TO one extra per
        # window is under 1%.
        return [
            RatePolicy(self._quota_name(i, j), q.limit, float(q.seconds),
                       "sliding_log" if q.limit <= EXACT_UP_TO else "sliding_window", on_store_error="closed")
            for i, route in enumerate(self.policy.routes)
            for j, q in enumerate(route.quotas)
        ]

    def _quota_name(self, route: int, quota: int) -> str:
        q = self.policy.routes[route].quotas[quota]
        return f"route{route}.q{quota}.{q.per}-per-{q.window}"

    async def start(self) -> None:
        await self.authenticator.start()

    async def aclose(self) -> None:
        await self.authenticator.aclose()
        await self.limiter.aclose()
        close = getattr(self.guard.api_keys, "close", None)
        if close is not None:
            await close()

    # -- the pipeline -------------------------------------------------------------------------

    async def decide(self, request: Request) -> Verdict:
        """The verdict for one subrequest; every refusal is a Verdict, never an exception."""
        try:
            return await self._decide(request)
        except CredentialRefusal as refusal:
            answer = self.guard.render(refusal.error)
            return Verdict(answer.status_code, list(answer.headers), dict(answer.body))
        except OAuthError as error:
            return self._refused(error)
        except Exception:
            # A dependency failing in a way its client does not name (a database behind the API
            # keys, a Redis reply cut short): the edge cannot decide, so it answers 503 and the
            # proxy fails closed; the traceback goes to the log, never to the client.
            log.exception("edge: the decision failed")
            return self._refused(Refusal(503, "temporarily_unavailable",
                                         "The decision service cannot decide now; try again shortly."))

    async def _decide(self, request: Request) -> Verdict:
        peer = request.client.host if request.client else None
        if peer not in self.peers:
            raise Refusal(403, "forbidden", "Only the proxy may ask for decisions.")
        raw = dict(request.headers.raw)
        if len(raw) != len(request.headers.raw):
            names = [name.lower() for name, _ in request.headers.raw]
            twice = [n.decode() for n in PROXY_HEADERS if names.count(n) > 1]
            if twice:
                raise InvalidRequest(f"The proxy sent {', '.join(twice)} more than once.", detail="duplicate header")
        method = raw.get(b"x-forwarded-method", b"").decode("latin-1")
        uri = raw.get(b"x-forwarded-uri")
        if not method or uri is None:
            raise InvalidRequest("The proxy sent no X-Forwarded-Method or X-Forwarded-Uri.",
                                 detail=f"method {method!r}, uri {uri!r}")
        if method not in METHODS:
            # Exactly as sent: methods are case-sensitive (RFC 9110 §9.1), and an upstream may
            # route a `get` differently from the GET the decision would have checked.
            raise InvalidRequest(f"X-Forwarded-Method {method[:16]!r} is not one of {', '.join(METHODS)}.",
                                 detail=f"method {method!r}")
        address = _client_address(raw.get(b"x-forwarded-for", b""), str(peer))
        bind_source(address)
        accepted = accept(uri, self.policy.max_query)
        index, route = self.router.match(method, accepted.path)
        self._check_body(route, raw)
        thumbprint = self._check_certificate(route, raw)
        key = self._cache_key(index, route, request, accepted.query, method)
        principal = self.cache.get(key) if self.cache is not None and key is not None else None
        fresh = principal is None
        if fresh:
            principal = await self._authenticate(index, route, request, accepted.query)
        # Counted on every request, cached allow or not.
        quota_headers = await self._check_quotas(index, route, principal, address)
        if fresh and key is not None and principal is not None and self.cache is not None:
            # Only a whole allow is kept, never past the token's exp.
            self.cache.put(key, principal, principal.token.expires_at if principal.token is not None else None)
        return Verdict(200, [*self._identity(principal, thumbprint), *quota_headers])

    def _cache_key(self, index: int, route: PolicyRoute, request: Request, query: str,
                   method: str) -> CacheKey | None:
        """The decision cache's key for this request's one credential; None when the cache is off,
        the route public, or the credentials are not one clean token or key (the guard refuses
        those)."""
        if self.cache is None or route.public:
            return None
        try:
            bearer, api_key = extract_credentials(request.headers.raw, query.encode("ascii"),
                                                  self.guard.api_key_header)
        except GuardError:
            return None
        if bearer is not None:
            return DecisionCache.key("bearer", bearer, method, index)
        return DecisionCache.key("api_key", api_key, method, index) if api_key is not None else None

    def _check_body(self, route: PolicyRoute, raw: dict[bytes, bytes]) -> None:
        declared = raw.get(b"x-original-content-length") or raw.get(b"content-length") or b"0"
        if not declared.isdigit() or len(declared) > 18:
            raise InvalidRequest("The declared Content-Length is not a number.", detail=f"length {declared!r}")
        length = int(declared)
        if length > route.body.max:
            raise Refusal(413, "payload_too_large",
                          f"The request body is larger than {route.body.max} bytes.")
        if not route.body.types:
            return
        given = raw.get(b"content-type")
        if given is None and length == 0:
            return
        media = _media_type(given.decode("latin-1")) if given is not None else ""
        if media not in route.body.types:
            raise Refusal(415, "unsupported_media_type",
                          f"This route accepts {', '.join(route.body.types)} bodies.")

    def _check_certificate(self, route: PolicyRoute, raw: dict[bytes, bytes]) -> str | None:
        pem = raw.get(b"x-client-cert", b"").decode("latin-1").strip()
        if pem:
            return _thumbprint(pem)
        if route.client_cert == "required":
            raise Refusal(403, "forbidden", "This route requires a verified client certificate.")
        return None

    async def _authenticate(self, index: int, route: PolicyRoute, request: Request, query: str) -> Principal | None:
        if route.public:
            return None
        requirement = self.requirements[index]
        try:
            return await self.guard.check(requirement, request.headers.raw, query.encode("ascii"),
                                          target=(request.headers.get("x-forwarded-method", ""), route.path))
        except (UnknownIssuer, UnknownKey) as error:
            if self._issuer_unreachable():
                raise Refusal(503, "temporarily_unavailable",
                              "The token issuer's keys cannot be fetched; try again shortly.",
                              [("Retry-After", "5")]) from error
            raise CredentialRefusal(error) from error
        except OAuthError as error:
            raise CredentialRefusal(error) from error

    def _issuer_unreachable(self) -> bool:
        validator = self.authenticator.validator
        return all(validator.keys(name) is None for name in (self.policy.issuer, self.policy.issuer + "/"))

    async def _check_quotas(self, index: int, route: PolicyRoute, principal: Principal | None,
                            address: str) -> list[tuple[str, str]]:
        if not route.quotas:
            return []
        pairs = [(name, self._subject(per, principal, address)) for name, per in self.quotas[index]]
        decisions = await self.limiter.hit_all(pairs)
        if any(d.degraded and not d.allowed for d in decisions):
            raise Refusal(503, "temporarily_unavailable", "The quota store cannot be reached; try again shortly.",
                          [("Retry-After", "1")])
        headers = _quota_headers(decisions)
        refused = [d for d in decisions if not d.allowed]
        if refused:
            wait = max(retry_after_seconds(d) for d in refused)
            raise Refusal(429, "rate_limited", f"Too many requests; retry in {wait} s.", headers)
        return headers

    @staticmethod
    def _subject(per: str, principal: Principal | None, address: str) -> str:
        if per == "address" or principal is None:
            return f"address:{_counted_network(address)}"
        value = {"client_id": principal.client_id, "sub": principal.subject, "api_key": principal.api_key_id}[per]
        if not value:
            return principal.actor
        # An API key's owner is a name in the key store, not the issuer's `sub`: a key owned by
        # `alice` and the user `alice` never spend one counter.
        # The kind first, so no token's sub (`apikey:alice`) can spell a key owner's counter.
        return f"{per}:{'apikey' if principal.kind == 'api_key' else 'token'}:{value}"

    @staticmethod
    def _identity(principal: Principal | None, thumbprint: str | None) -> list[tuple[str, str]]:
        values = ("", "", "", "", "", thumbprint or "")
        if principal is not None:
            values = (
                principal.subject, principal.client_id or "", " ".join(sorted(principal.scopes)),
                " ".join(sorted(principal.roles)), principal.api_key_id or "", thumbprint or "",
            )
        return [(name, value if _plain(value) else quote(value, safe=_HEADER_SAFE))
                for name, value in zip(IDENTITY, values, strict=True)]

    @staticmethod
    def _refused(error: OAuthError) -> Verdict:
        body = {"error": error.error, "error_description": error.description}
        if isinstance(error, Refusal):
            body["error"] = error.code
            return Verdict(error.status, error.headers, body)
        headers = [("Allow", ", ".join(error.allow))] if isinstance(error, MethodNotAllowed) else []
        return Verdict(error.status_code, headers, body)


def _quota_headers(decisions: list[Decision]) -> list[tuple[str, str]]:
    """The IETF `RateLimit-Policy`/`RateLimit` fields (and `Retry-After`), plus the older
    `RateLimit-Limit/Remaining/Reset` trio many clients and proxies still read."""
    binding = min(decisions, key=lambda d: (d.allowed, d.remaining))
    return [
        *rate_limit_headers(decisions),
        ("RateLimit-Limit", str(binding.limit)),
        ("RateLimit-Remaining", str(binding.remaining)),
        ("RateLimit-Reset", str(reset_seconds(binding))),
    ]


def _answer(verdict: Verdict, via_403: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The answer's status, raw ASGI headers and body (what Starlette's Response would send,
    without building one per decision)."""
    named = dict(verdict.headers)
    status = verdict.status
    if via_403 and status not in (200, 401, 403):
        named["X-Bastion-Status"] = str(status)
        status = 403
    body = b""
    if verdict.body is not None:
        named["Cache-Control"] = "no-store"
        named["Content-Type"] = "application/json"
        body = json.dumps(verdict.body, separators=(",", ":")).encode()
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in named.items()]
    headers.append((b"content-length", str(len(body)).encode()))
    return status, headers, body


def build_app(policy: Policy, *, edge: Edge | None = None) -> ASGIApp:
    """An ASGI app answering `/decide` for `policy`.

    The decision itself is plain ASGI behind the request-id middleware: no router, no exception
    middleware (`Edge.decide` turns every failure into a verdict): those layers were a quarter of
    a profiled decision. The lifespan and anything but `/decide` (404) go to a Starlette app.
    """
    service = edge or Edge(policy)

    async def answer(request: Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        verdict = await service.decide(request)
        _audit(request, verdict)
        return _answer(verdict, request.headers.get(STATUS_VIA) == "403")

    async def decide_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        status, headers, body = await answer(Request(scope, receive))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await asyncio.shield(service.aclose())

    trusted = [*LOOPBACK, *(str(n) for n in policy.trusted_proxies)]
    fast = RequestIdMiddleware(decide_asgi, trusted_proxies=trusted)
    fast.trusted_proxies = service.peers  # the same networks, each address parsed once
    other = Starlette(  # the lifespan, and 404 for any other path
        middleware=[Middleware(RequestIdMiddleware, trusted_proxies=trusted)],
        lifespan=lifespan,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # Any method: nginx's auth_request subrequest keeps the original one (PROPFIND, BREW),
        # and a framework's bare 405 would reach nginx as an unexpected status, a 500. The
        # decision reads X-Forwarded-Method and refuses what it does not decide (400).
        if scope["type"] == "http" and scope["path"] == "/decide":
            await fast(scope, receive, send)
        else:
            await other(scope, receive, send)

    return app


# Query parameters whose value is a credential: never written to the audit line (a client that
# puts its token in the URI, refused or not, must not leave it in the log).
_SECRET_PARAMETERS = frozenset({
    "access_token", "refresh_token", "id_token", "token", "code", "api_key", "apikey", "key",
    "client_secret", "password", "secret",
})


def _loggable(uri: str) -> str:
    """The raw URI as the audit line keeps it: credential-named query values replaced, 512 chars."""
    path, separator, query = uri.partition("?")
    if not separator:
        return uri[:512]
    pairs = []
    for pair in query.split("&"):
        name, equals, _value = pair.partition("=")
        if equals and unquote(name).strip().lower().replace("-", "_") in _SECRET_PARAMETERS:
            pair = f"{name}=[redacted]"
        pairs.append(pair)
    return f"{path}?{'&'.join(pairs)}"[:512]


def _audit(request: Request, verdict: Verdict) -> None:
    headers = dict(verdict.headers)
    error = verdict.body.get("error", "unauthorized") if verdict.body else None
    audit(
        "edge.decision",
        outcome="allowed" if verdict.status == 200 else "denied",
        status=verdict.status,
        method=request.headers.get("x-forwarded-method", ""),
        uri=_loggable(request.headers.get("x-forwarded-uri", "")),
        error=error,
        sub=headers.get("X-Bastion-Sub") or None,
        client_id=headers.get("X-Bastion-Client-Id") or None,
        api_key_id=headers.get("X-Bastion-Api-Key-Id") or None,
    )
