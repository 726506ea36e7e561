"""The I/O wrapper: discovery, JWKS cache and refresh, several issuers, revocation feeds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.guard import Authenticator, InvalidToken, IssuerConfig, TrustedIssuer, discovery_matches
from bastion.guard.introspection import IntrospectionClient
from bastion.guard.revocation import HttpRevocationPoller, RedisRevocationSync
from tests._services import need_redis
from tests.guard._issuer import AUDIENCE, REVOCATION_CLIENT, TestIssuer, running_issuer, serve_in_thread

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fresh_issuer() -> Iterator[TestIssuer]:
    """An issuer of its own, so that request counts belong to this test alone."""
    with running_issuer() as issuer:
        yield issuer


def config(issuer: TestIssuer, audience: str = AUDIENCE, **kwargs: object) -> IssuerConfig:
    return IssuerConfig(f"{issuer.issuer}/.well-known/openid-configuration", audience, **kwargs)  # type: ignore[arg-type]


async def test_discovers_issuer_on_first_token(fresh_issuer: TestIssuer) -> None:
    """Without start(), the first token triggers discovery and JWKS fetch, once."""
    auth = Authenticator([config(fresh_issuer)])
    principal = await auth.authenticate_bearer(fresh_issuer.mint(sub="bob"))
    await auth.authenticate_bearer(fresh_issuer.mint(sub="carol"))

    assert principal.subject == "bob"
    assert fresh_issuer.requests == ["/.well-known/openid-configuration", "/jwks"]
    await auth.aclose()


async def test_unknown_kid_refetches_at_most_once_per_interval(fresh_issuer: TestIssuer) -> None:
    """A flood of random kids causes one JWKS refetch per interval, not one per token."""
    clock = Clock()
    auth = Authenticator([config(fresh_issuer)], clock=clock, refresh_interval=30)
    await auth.start()
    clock.now += 31
    for _ in range(20):
        with pytest.raises(InvalidToken):
            await auth.authenticate_bearer(fresh_issuer.mint(header={"kid": uuid.uuid4().hex}))

    assert fresh_issuer.requests == ["/.well-known/openid-configuration", "/jwks", "/jwks"]
    await auth.aclose()


async def test_rotated_key_is_picked_up(fresh_issuer: TestIssuer) -> None:
    """A token signed by a key added to the JWKS after start-up is accepted after one refetch."""
    clock = Clock()
    auth = Authenticator([config(fresh_issuer)], clock=clock, refresh_interval=30)
    await auth.start()
    fresh_issuer.ec_kid = "rotated"
    clock.now += 31

    principal = await auth.authenticate_bearer(fresh_issuer.mint())

    assert principal.subject == "alice"
    assert fresh_issuer.requests.count("/jwks") == 2
    await auth.aclose()


async def test_jwks_is_refreshed_when_its_cache_lifetime_ends(fresh_issuer: TestIssuer) -> None:
    """Cache-Control max-age of the JWKS decides when it is fetched again."""
    fresh_issuer.jwks_max_age = 120
    clock = Clock()
    auth = Authenticator([config(fresh_issuer)], clock=clock, jwks_min_age=60)
    await auth.start()
    token = fresh_issuer.mint()
    await auth.authenticate_bearer(token)
    clock.now += 119
    await auth.authenticate_bearer(token)
    assert fresh_issuer.requests.count("/jwks") == 1

    clock.now += 2
    await auth.authenticate_bearer(token)

    assert fresh_issuer.requests.count("/jwks") == 2
    await auth.aclose()


async def test_two_issuers_each_with_its_audience() -> None:
    """Several issuers are trusted at once, each for its own audience."""
    with running_issuer() as first, running_issuer() as second:
        auth = Authenticator([config(first), config(second, "https://other.api")])
        await auth.start()

        assert (await auth.authenticate_bearer(first.mint(sub="a"))).issuer == first.issuer
        other = second.mint(sub="b", aud="https://other.api")
        assert (await auth.authenticate_bearer(other)).issuer == second.issuer
        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate_bearer(second.mint(sub="b"))
        assert caught.value.detail == "audience mismatch"
        await auth.aclose()


async def test_unconfigured_issuer_is_refused(fresh_issuer: TestIssuer) -> None:
    """A token from an issuer that is not configured is refused, even with a valid signature."""
    with running_issuer() as stranger:
        auth = Authenticator([config(fresh_issuer)])
        await auth.start()
        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate_bearer(stranger.mint())

        assert caught.value.detail == f"issuer not trusted: {stranger.issuer!r}"
        assert stranger.requests == []
        await auth.aclose()


async def test_jku_is_never_fetched(fresh_issuer: TestIssuer) -> None:
    """A jku header is refused and the URL it names receives zero requests."""
    canary_hits: list[str] = []

    async def canary(request: Request) -> JSONResponse:
        canary_hits.append(request.url.path)
        return JSONResponse(fresh_issuer.public_jwks())

    with serve_in_thread(Starlette(routes=[Route("/jwks", canary)])) as canary_url:
        auth = Authenticator([config(fresh_issuer)])
        with pytest.raises(InvalidToken):
            await auth.authenticate_bearer(fresh_issuer.mint(header={"jku": f"{canary_url}/jwks"}))
        await auth.aclose()

    assert canary_hits == []


async def test_discovery_with_mismatched_issuer_is_not_trusted(fresh_issuer: TestIssuer) -> None:
    """RFC 8414 §3.3: metadata whose issuer did not build its URL is ignored (fail closed)."""
    real = fresh_issuer.issuer
    fresh_issuer.issuer = "http://impostor.test"
    auth = Authenticator([IssuerConfig(f"{real}/.well-known/openid-configuration", AUDIENCE)])
    await auth.start()

    with pytest.raises(InvalidToken) as caught:
        await auth.authenticate_bearer(fresh_issuer.mint())

    assert caught.value.detail == "issuer not trusted: 'http://impostor.test'"
    await auth.aclose()


@pytest.mark.parametrize(
    ("url", "issuer", "ok"),
    [
        pytest.param("https://a.test/.well-known/openid-configuration", "https://a.test", True, id="oidc"),
        pytest.param("https://a.test/t1/.well-known/openid-configuration", "https://a.test/t1", True, id="oidc-path"),
        pytest.param(
            "https://a.test/.well-known/oauth-authorization-server/t1", "https://a.test/t1", True, id="rfc8414-path"
        ),
        pytest.param("https://a.test/.well-known/openid-configuration", "https://b.test", False, id="other-host"),
        pytest.param("https://a.test/.well-known/openid-configuration", "https://a.test/x", False, id="other-path"),
    ],
)
def test_discovery_matches(url: str, issuer: str, ok: bool) -> None:
    """The discovery URL must be derived from the issuer it describes."""
    assert discovery_matches(url, issuer) is ok


async def test_static_issuer_needs_no_network(fresh_issuer: TestIssuer) -> None:
    """An issuer configured with its JWKS directly works without any fetch."""
    auth = Authenticator(static_issuers=[(TrustedIssuer(fresh_issuer.issuer, AUDIENCE), fresh_issuer.public_jwks())])

    assert (await auth.authenticate_bearer(fresh_issuer.mint())).subject == "alice"
    assert fresh_issuer.requests == []


async def test_http_revocation_poll_revokes_cached_token(fresh_issuer: TestIssuer) -> None:
    """The polled revocation list refuses a token on its next use, cached or not."""
    auth = Authenticator([config(fresh_issuer)])
    token = fresh_issuer.mint(jti="revoke-me")
    await auth.authenticate_bearer(token)
    fresh_issuer.revoke("revoke-me", int(time.time()) + 300)
    async with httpx.AsyncClient() as http:
        poller = HttpRevocationPoller(
            f"{fresh_issuer.issuer}/revocations",
            client_id=REVOCATION_CLIENT[0],
            client_secret=REVOCATION_CLIENT[1],
            denylist=auth.denylist,
            http=http,
        )
        assert await poller.poll() == 1
        assert poller.since > 0

    with pytest.raises(InvalidToken) as caught:
        await auth.authenticate_bearer(token)
    assert caught.value.detail == "revoked"
    await auth.aclose()


async def test_redis_revocation_sync(fresh_issuer: TestIssuer) -> None:
    """Revocation keys in Redis reach the denylist in one sync, with their exp."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(need_redis())
    prefix = f"test:{uuid.uuid4().hex}:bastion:revoked:jti:"
    exp = int(time.time()) + 300
    try:
        await client.set(prefix + "jti-1", str(exp), ex=300)
        auth = Authenticator([config(fresh_issuer)])
        sync = RedisRevocationSync(client, denylist=auth.denylist, prefix=prefix)

        assert await sync.poll() == 1
        assert await sync.poll() == 0
        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate_bearer(fresh_issuer.mint(jti="jti-1"))
        assert caught.value.detail == "revoked"
        await auth.aclose()
    finally:
        await client.delete(prefix + "jti-1")
        await client.aclose()


async def test_introspection_of_opaque_tokens(fresh_issuer: TestIssuer) -> None:
    """Opaque tokens are introspected (RFC 7662) and the answer is cached."""
    exp = int(time.time()) + 300
    fresh_issuer.opaque["opaque-1"] = {
        "active": True,
        "sub": "dave",
        "client_id": "c",
        "aud": AUDIENCE,
        "exp": exp,
        "scope": "notes:read",
        "iss": fresh_issuer.issuer,
    }
    fresh_issuer.opaque["other-aud"] = fresh_issuer.opaque["opaque-1"] | {"aud": "https://x"}
    async with httpx.AsyncClient() as http:
        introspector = IntrospectionClient(
            f"{fresh_issuer.issuer}/introspect",
            client_id=REVOCATION_CLIENT[0],
            client_secret=REVOCATION_CLIENT[1],
            issuer=fresh_issuer.issuer,
            audience=AUDIENCE,
            http=http,
        )
        auth = Authenticator([config(fresh_issuer)], introspector=introspector)
        first = await auth.authenticate_bearer("opaque-1")
        await auth.authenticate_bearer("opaque-1")
        for token in ("other-aud", "unknown"):
            with pytest.raises(InvalidToken):
                await auth.authenticate_bearer(token)
            with pytest.raises(InvalidToken):
                await auth.authenticate_bearer(token)

    assert (first.subject, first.scopes) == ("dave", frozenset({"notes:read"}))
    assert introspector.calls == 3


async def test_revocation_feed_runs_in_the_background(fresh_issuer: TestIssuer) -> None:
    """A configured feed starts with the first request and keeps the denylist current."""
    import asyncio

    from bastion.guard import Denylist

    denylist = Denylist()
    async with httpx.AsyncClient() as http:
        poller = HttpRevocationPoller(
            f"{fresh_issuer.issuer}/revocations",
            client_id=REVOCATION_CLIENT[0],
            client_secret=REVOCATION_CLIENT[1],
            denylist=denylist,
            http=http,
        )
        auth = Authenticator(
            [config(fresh_issuer)], denylist=denylist, revocation_feeds=[poller], revocation_interval=0.02
        )
        token = fresh_issuer.mint(jti="feed-revoked")
        await auth.authenticate_bearer(token)
        fresh_issuer.revoke("feed-revoked", int(time.time()) + 300)
        for _ in range(500):
            if "feed-revoked" in denylist:
                break
            await asyncio.sleep(0.01)

        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate_bearer(token)
        await auth.aclose()

    assert caught.value.detail == "revoked"


def _hostile_app(base: list[str]) -> Starlette:
    async def redirecting_discovery(request: Request) -> Any:
        from starlette.responses import RedirectResponse

        return RedirectResponse("http://127.0.0.1:9/elsewhere", status_code=302)

    async def huge_discovery(request: Request) -> JSONResponse:
        return JSONResponse({"issuer": base[0] + "/huge", "jwks_uri": base[0] + "/huge/jwks", "pad": "x" * 2_000_000})

    async def html_discovery(request: Request) -> Any:
        from starlette.responses import HTMLResponse

        return HTMLResponse("<html>not json</html>")

    return Starlette(
        routes=[
            Route("/redirect/.well-known/openid-configuration", redirecting_discovery),
            Route("/huge/.well-known/openid-configuration", huge_discovery),
            Route("/html/.well-known/openid-configuration", html_discovery),
        ]
    )


@pytest.mark.parametrize("flavour", ["redirect", "huge", "html"])
async def test_hostile_metadata_fails_closed(flavour: str, fresh_issuer: TestIssuer) -> None:
    """A redirecting, oversized or non-JSON discovery document is not followed or trusted."""
    base: list[str] = []
    with serve_in_thread(_hostile_app(base)) as url:
        base.append(url)
        auth = Authenticator([IssuerConfig(f"{url}/{flavour}/.well-known/openid-configuration", AUDIENCE)])
        await auth.start()
        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate_bearer(fresh_issuer.mint(iss=f"{url}/{flavour}"))
        await auth.aclose()

    assert caught.value.detail == f"issuer not trusted: '{url}/{flavour}'"


async def test_issuer_jwk_with_a_non_string_member_is_skipped_not_a_crash(fresh_issuer: TestIssuer) -> None:
    """A JWKS entry whose alg is a list (anyone's JSON) is skipped: its kid is unknown, the other
    keys still verify, and nothing raises TypeError (RFC 7517 §4)."""
    hostile = {"kty": "EC", "crv": "P-256", "kid": "hostile", "alg": ["ES256"], "x": "AA", "y": "AA"}
    fresh_issuer.extra_keys.append(hostile)
    auth = Authenticator([config(fresh_issuer)])

    principal = await auth.authenticate_bearer(fresh_issuer.mint(sub="bob"))
    with pytest.raises(InvalidToken):
        await auth.authenticate_bearer(fresh_issuer.mint(header={"kid": "hostile"}))
    await auth.aclose()

    assert principal.subject == "bob"


@pytest.mark.parametrize(
    ("alg", "kid_of"),
    [
        pytest.param("RS256", "ec", id="RS256-with-EC-kid"),
        pytest.param("ES256", "rsa", id="ES256-with-RSA-kid"),
    ],
)
async def test_alg_not_fitting_the_kid_key_is_invalid_token(fresh_issuer: TestIssuer, alg: str, kid_of: str) -> None:
    """RFC 8725 §3.1: a token whose alg does not fit the key its kid names is invalid_token, never a TypeError."""
    auth = Authenticator([config(fresh_issuer)])
    kid = fresh_issuer.ec_kid if kid_of == "ec" else fresh_issuer.rsa_kid

    with pytest.raises(InvalidToken):
        await auth.authenticate_bearer(fresh_issuer.mint(alg, header={"kid": kid}))
    await auth.aclose()
