"""The optional decision cache (`decision_cache_seconds`): off by default; when on, an allowed
credential is not checked again on its route and method until the seconds are over, while the
quotas are still counted on every request. Its documented price: a revoked token keeps passing
until its entry ends. Through a real `bastion edge serve` and a real issuer, plus the cache alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.edge import load
from bastion.edge.cache import DecisionCache
from bastion.edge.decision import Edge
from bastion.guard import Principal
from tests._services import need_redis
from tests.edge._edge import EdgeProcess, running_edge
from tests.edge.test_decision import error_of, token, write_policy
from tests.guard._issuer import TestIssuer, running_issuer

TTL = 20  # long enough for the plain edge's revocation poll (every 5 s) on a loaded machine


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    """The test issuer on a real uvicorn server: discovery, JWKS, revocations."""
    with running_issuer() as live:
        yield live


def _policy(directory: Path, issuer: str, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "apikeys.json").write_text('{"keys": []}')
    return write_policy(directory, issuer, extra)


@pytest.fixture(scope="module")
def plain(issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeProcess]:
    """The decision service with the policy's default: no decision cache."""
    with running_edge(_policy(tmp_path_factory.mktemp("plain"), issuer.issuer)) as process:
        yield process


@pytest.fixture(scope="module")
def cached(issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeProcess]:
    """The same policy with `decision_cache_seconds: TTL`, counters in memory."""
    policy = _policy(tmp_path_factory.mktemp("cached"), issuer.issuer, f"decision_cache_seconds: {TTL}\n")
    with running_edge(policy) as process:
        yield process


@pytest.fixture(scope="module")
def cached_redis(issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeProcess]:
    """The cached policy with its counters in Redis."""
    extra = f"decision_cache_seconds: {TTL}\nredis: {need_redis()}\n"
    with running_edge(_policy(tmp_path_factory.mktemp("cached-redis"), issuer.issuer, extra)) as process:
        yield process


@pytest.fixture(params=["memory", "redis"])
def counted(request: pytest.FixtureRequest) -> EdgeProcess:
    """The cached decision service with its counters in memory, then in Redis."""
    process: EdgeProcess = request.getfixturevalue("cached" if request.param == "memory" else "cached_redis")
    return process


def test_the_cache_is_off_by_default(tmp_path: Path) -> None:
    """A policy that does not ask for the cache gets none (`decision_cache_seconds` 0)."""
    policy = load(_policy(tmp_path, "http://127.0.0.1:9"))

    assert policy.decision_cache_seconds == 0
    assert Edge(policy).cache is None


def test_a_revoked_token_passes_until_its_cached_allow_ends(
    plain: EdgeProcess, cached: EdgeProcess, issuer: TestIssuer
) -> None:
    """The documented price: once the revocation is known, the default edge refuses the token at
    once, and so does the cached edge on any other route, but its cached allow passes until TTL."""
    jti = uuid.uuid4().hex
    revoked = token(issuer, jti=jti, sub=f"cache-{jti}")
    start = time.monotonic()
    assert cached.decide("GET", "/notes", token=revoked).status_code == 200
    assert plain.decide("GET", "/notes", token=revoked).status_code == 200

    issuer.revoke(jti, int(time.time()) + 300)
    # The role route refuses this token after authenticating it (403, never cached): it turns
    # 401 when the cached edge's own revocation poll has seen the jti.
    while (refused := plain.decide("GET", "/notes", token=revoked)).status_code == 200 or \
            (other_route := cached.decide("GET", "/notes/7", token=revoked)).status_code == 403:
        assert time.monotonic() < start + 30, "the revocation was never applied"
        time.sleep(0.25)
    still = cached.decide("GET", "/notes", token=revoked)
    assert time.monotonic() < start + TTL, "the revocation came after the cached allow ended: nothing was shown"
    time.sleep(max(0.0, start + TTL + 0.5 - time.monotonic()))
    after = cached.decide("GET", "/notes", token=revoked)

    assert (refused.status_code, error_of(refused)) == (401, "invalid_token")
    assert (other_route.status_code, error_of(other_route)) == (401, "invalid_token")
    assert still.status_code == 200
    assert still.headers["x-bastion-sub"] == f"cache-{jti}"
    assert (after.status_code, error_of(after)) == (401, "invalid_token")


def test_a_cached_allow_is_served_without_the_issuer(tmp_path: Path) -> None:
    """After the first decision the issuer's server stops (discovery, JWKS, revocations all gone):
    the cached allow still answers 200 with the same identity within its seconds."""
    with contextlib.ExitStack() as issuer_block:
        gone = issuer_block.enter_context(running_issuer())
        bearer = token(gone, sub="offline")
        with running_edge(_policy(tmp_path, gone.issuer, f"decision_cache_seconds: {TTL}\n")) as process:
            first = process.decide("GET", "/notes", token=bearer)
            issuer_block.close()
            with pytest.raises(httpx.TransportError):
                httpx.get(gone.issuer + "/jwks", timeout=2)
            second = process.decide("GET", "/notes", token=bearer)

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.headers["x-bastion-sub"] == "offline"


def test_quotas_are_counted_on_every_cached_allow(counted: EdgeProcess, issuer: TestIssuer) -> None:
    """Two a minute per sub: with the allow cached after the first request, the third is still 429."""
    bearer = token(issuer, sub=f"quota-{uuid.uuid4().hex}")
    answers = [counted.decide("GET", "/limited", token=bearer) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
    assert error_of(answers[2]) == "rate_limited"
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60


def test_a_cached_allow_serves_only_its_route_and_method(cached: EdgeProcess, issuer: TestIssuer) -> None:
    """An allow cached for GET /notes opens no other route (a role required) nor method (a body type)."""
    bearer = token(issuer, sub=f"route-{uuid.uuid4().hex}")
    allowed = cached.decide("GET", "/notes", token=bearer)
    other_route = cached.decide("GET", "/notes/7", token=bearer)
    other_method = cached.decide("POST", "/notes", token=bearer,
                                 headers={"Content-Type": "text/plain", "X-Original-Content-Length": "2"})
    again = cached.decide("GET", "/notes", token=bearer, headers={"X-Request-ID": "cached-1"})

    assert allowed.status_code == 200
    assert (other_route.status_code, error_of(other_route)) == (403, "forbidden")
    assert (other_method.status_code, error_of(other_method)) == (415, "unsupported_media_type")
    assert (again.status_code, again.headers["x-request-id"]) == (200, "cached-1")


# -- the cache alone ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


ALICE = Principal(kind="user", subject="alice", scopes=frozenset({"notes:read"}))


def test_an_entry_lasts_its_seconds_and_never_past_exp() -> None:
    """Kept for `seconds`, or until the token's exp when that comes first; a spent token is not kept."""
    clock = Clock()
    cache = DecisionCache(10, clock=clock)
    long, short, spent = (DecisionCache.key("bearer", t, "GET", 0) for t in ("long", "short", "spent"))
    cache.put(long, ALICE, clock.now + 3600)
    cache.put(short, ALICE, clock.now + 2)
    cache.put(spent, ALICE, clock.now)

    assert (cache.get(long), cache.get(short), cache.get(spent)) == (ALICE, ALICE, None)
    clock.now += 2
    assert (cache.get(long), cache.get(short)) == (ALICE, None)
    clock.now += 8
    assert cache.get(long) is None
    assert len(cache) == 0


def test_the_cache_is_bounded_and_keys_keep_credentials_apart() -> None:
    """The oldest entry goes when full; a token and a key with the same text, another method or
    another route are other entries; the key holds the credential's SHA-256, never the credential."""
    cache = DecisionCache(10, maxsize=2, clock=Clock())
    first, second, third = (DecisionCache.key("bearer", t, "GET", 0) for t in ("a", "b", "c"))
    cache.put(first, ALICE, None)
    cache.put(second, ALICE, None)
    cache.put(third, ALICE, None)

    assert (cache.get(first), cache.get(second), cache.get(third), len(cache)) == (None, ALICE, ALICE, 2)
    keys = {DecisionCache.key("bearer", "b", "GET", 0), DecisionCache.key("api_key", "b", "GET", 0),
            DecisionCache.key("bearer", "b", "HEAD", 0), DecisionCache.key("bearer", "b", "GET", 1)}
    assert len(keys) == 4
    assert DecisionCache.key("bearer", "b", "GET", 0) == (hashlib.sha256(b"bearer b").digest(), "GET", 0)
