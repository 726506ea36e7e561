"""The rotation schedule (src/bastion/keys/keyring.py): which key signs, which keys are published.

Pure functions over stored schedules, plus the per-process KeyRing cache with real loaders.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bastion.keys.keyring import MAX_TOKEN_LIFETIME, KeyRing, KeySchedule, active_schedule, published, signs_until
from bastion.keys.material import generate_private_key

NOW = 1_800_000_000
LEEWAY = 30


def key(kid: str, activates_at: int, retired_at: int | None = None, alg: str = "ES256") -> KeySchedule:
    return KeySchedule(kid, alg, {"kid": kid, "alg": alg}, activates_at, retired_at)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param([key("a", NOW - 100)], "a", id="single-active"),
        pytest.param([key("a", NOW - 100), key("b", NOW - 10)], "b", id="newest-activated-signs"),
        pytest.param([key("a", NOW - 100), key("b", NOW + 10)], "a", id="pending-key-does-not-sign-yet"),
        pytest.param([key("a", NOW - 100), key("b", NOW)], "b", id="activates-exactly-now"),
        pytest.param([key("a", NOW - 100), key("b", NOW - 10, retired_at=NOW - 1)], "a", id="retired-newer-skipped"),
        pytest.param([key("a", NOW - 100, retired_at=NOW + 60)], "a", id="retirement-in-future-still-signs"),
        pytest.param([key("a", NOW - 100, retired_at=NOW)], None, id="retired-exactly-now"),
        pytest.param([key("a", NOW + 1)], None, id="only-pending"),
        pytest.param([key("a", NOW - 100, alg="RS256")], None, id="other-alg-only"),
        pytest.param([], None, id="no-keys"),
    ],
)
def test_active_schedule(keys, expected):
    """The signing key is the most recently activated key of the algorithm that is not retired."""
    active = active_schedule(keys, "ES256", NOW)

    assert (active.kid if active else None) == expected


def test_algorithms_rotate_independently():
    """ES256 and RS256 each have their own active key."""
    keys = [key("es-old", NOW - 100), key("es-new", NOW - 50), key("rs", NOW - 200, alg="RS256")]

    assert active_schedule(keys, "ES256", NOW).kid == "es-new"
    assert active_schedule(keys, "RS256", NOW).kid == "rs"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param([key("a", NOW - 100)], None, id="still-signing"),
        pytest.param([key("a", NOW - 100), key("b", NOW + 50)], NOW + 50, id="until-next-activation"),
        pytest.param([key("a", NOW - 100, retired_at=NOW - 5)], NOW - 5, id="until-retirement"),
        pytest.param([key("a", NOW - 100, retired_at=NOW + 90), key("b", NOW + 50)], NOW + 50, id="earlier-of-both"),
        pytest.param([key("a", NOW - 100), key("b", NOW + 50, alg="RS256")], None, id="other-alg-ignored"),
        pytest.param([key("a", NOW - 100), key("b", NOW + 50), key("c", NOW + 20)], NOW + 20, id="first-successor"),
    ],
)
def test_signs_until(keys, expected):
    """A key signs until it is retired or the next key of its algorithm activates, whichever is first."""
    assert signs_until(keys[0], keys) == expected


def _published(keys: list[KeySchedule], now: int) -> list[str]:
    return sorted(k.kid for k in published(keys, now, LEEWAY))


def test_pending_key_is_published_before_it_signs():
    """Pre-publication: a key that will sign later is already in the JWKS."""
    keys = [key("old", NOW - 100), key("new", NOW + 3600)]

    assert _published(keys, NOW) == ["new", "old"]
    assert active_schedule(keys, "ES256", NOW).kid == "old"


def test_superseded_key_stays_published_while_its_tokens_can_live():
    """A superseded key stays until the longest token it signed has expired (plus leeway), then disappears."""
    keys = [key("old", NOW - 7200), key("new", NOW - 10)]
    last_valid = NOW - 10 + MAX_TOKEN_LIFETIME + LEEWAY

    assert _published(keys, last_valid - 1) == ["new", "old"]
    assert _published(keys, last_valid) == ["new"]


def test_retired_key_stays_published_then_disappears():
    """A retired key is kept for an hour of tokens plus leeway after it last signed."""
    keys = [key("old", NOW - 7200, retired_at=NOW), key("new", NOW + 10)]

    assert _published(keys, NOW + MAX_TOKEN_LIFETIME + LEEWAY - 1) == ["new", "old"]
    assert _published(keys, NOW + MAX_TOKEN_LIFETIME + LEEWAY) == ["new"]


def test_max_token_lifetime_covers_the_longest_access_token():
    """Publication after signing covers the 60-minute ceiling of access_token_lifetime."""
    assert MAX_TOKEN_LIFETIME == 60 * 60


class Loader:
    """A real, countable source of schedules and private keys (what the database provides)."""

    def __init__(self, keys: list[KeySchedule]) -> None:
        self.keys = keys
        self.loads = 0
        self.private_loads: list[str] = []
        self.private = {k.kid: generate_private_key(k.alg) for k in keys}

    async def load(self) -> list[KeySchedule]:
        self.loads += 1
        return list(self.keys)

    async def load_private(self, kid: str) -> Any:
        self.private_loads.append(kid)
        return self.private[kid]


def _now_keys() -> list[KeySchedule]:
    now = int(time.time())
    return [key("old", now - 7200, retired_at=now - 3600 - 3600), key("current", now - 60), key("next", now + 3600)]


@pytest.mark.anyio
async def test_keyring_caches_the_schedule_for_cache_seconds():
    """Within cache_seconds the schedule is read once; with 0 it is read every time."""
    cached = Loader(_now_keys())
    ring = KeyRing(cached.load, cached.load_private, cache_seconds=60, leeway=LEEWAY)
    fresh = Loader(_now_keys())
    uncached = KeyRing(fresh.load, fresh.load_private, cache_seconds=0, leeway=LEEWAY)
    for _ in range(3):
        await ring.published_keys()
        await uncached.published_keys()

    assert cached.loads == 1
    assert fresh.loads == 3


@pytest.mark.anyio
async def test_keyring_signs_with_active_key_and_decrypts_it_once():
    """signing_key returns the active key; its private half is loaded once per process."""
    loader = Loader(_now_keys())
    ring = KeyRing(loader.load, loader.load_private, cache_seconds=60, leeway=LEEWAY)
    first = await ring.signing_key("ES256")
    second = await ring.signing_key("ES256")

    assert first is not None
    assert first.kid == "current"
    assert second is not None
    assert second.private_key is first.private_key
    assert loader.private_loads == ["current"]
    assert await ring.signing_key("PS256") is None


@pytest.mark.anyio
async def test_keyring_jwks_lists_published_keys_only():
    """The JWKS body holds pending and active keys, not keys whose tokens have all expired."""
    loader = Loader(_now_keys())
    ring = KeyRing(loader.load, loader.load_private, cache_seconds=60, leeway=LEEWAY)
    body = await ring.jwks_body()

    assert sorted(k["kid"] for k in json.loads(body)["keys"]) == ["current", "next"]
    assert await ring.jwks_body() is body


@pytest.mark.anyio
async def test_unknown_kid_forces_a_refresh():
    """A kid not in the cached schedule (another process rotated) triggers one reload before giving up."""
    loader = Loader(_now_keys())
    ring = KeyRing(loader.load, loader.load_private, cache_seconds=60, leeway=LEEWAY)
    await ring.published_keys()
    loader.keys.append(key("rotated-elsewhere", int(time.time()) + 3600))
    found = await ring.public_key("rotated-elsewhere")
    missing = await ring.public_key("never-existed")

    assert found is not None
    assert found.kid == "rotated-elsewhere"
    assert missing is None
    assert loader.loads == 3
