"""Which key signs and which keys are published, computed from the stored schedule."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.keys.material import PrivateKey

# An access token lives at most 60 minutes (a product rule); a superseded key stays published
# that long after it last signed, plus leeway for clock skew.
MAX_TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class KeySchedule:
    """One stored key's public half and its schedule (unix seconds)."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    activates_at: int
    retired_at: int | None


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)


def active_schedule(keys: Sequence[KeySchedule], alg: str, now: int) -> KeySchedule | None:
    """The signing key for `alg` at `now`: the most recently activated key not yet retired."""
    candidates = [
        k for k in keys if k.alg == alg and k.activates_at <= now and (k.retired_at is None or k.retired_at > now)
    ]
    return max(candidates, key=lambda k: (k.activates_at, k.kid), default=None)


def signs_until(key: KeySchedule, keys: Sequence[KeySchedule]) -> int | None:
    """When `key` stops signing: its retirement, or the activation of the next key of its alg."""
    later = [k.activates_at for k in keys if k.alg == key.alg and k.activates_at > key.activates_at]
    ends = [t for t in (key.retired_at, min(later, default=None)) if t is not None]
    return min(ends, default=None)


def published(keys: Sequence[KeySchedule], now: int, leeway: int) -> list[KeySchedule]:
    """Keys in the JWKS: pending and active ones, and superseded or retired ones whose tokens
    may still be alive (they stop signing at `signs_until`, tokens live at most an hour)."""
    shown = []
    for key in keys:
        end = signs_until(key, keys)
        if end is None or end + MAX_TOKEN_LIFETIME + leeway > now:
            shown.append(key)
    return shown


class KeyRing:
    """A per-process cache of the key schedule, refreshed every `cache_seconds`.

    `load` returns the schedules and a function that decrypts one private key by kid.
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[list[KeySchedule]]],
        load_private: Callable[[str], Awaitable[PrivateKey]],
        *,
        cache_seconds: float,
        leeway: int,
    ) -> None:
        self._load = load
        self._load_private = load_private
        self._cache_seconds = cache_seconds
        self._leeway = leeway
        self._keys: list[KeySchedule] = []
        self._loaded_at = float("-inf")
        self._private: dict[str, PrivateKey] = {}
        self._jwks_body: bytes = b'{"keys":[]}'
        self._jwks_for: tuple[str, ...] = ()
        self._loading: tuple[float, asyncio.Future[None]] | None = None
        # alg -> (second, schedule list, answer): the active key changes at most once a second
        # or when the schedule is reloaded, so within a second one answer serves every request.
        self._signing: dict[str, tuple[int, list[KeySchedule], SigningKey | None]] = {}

    async def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._loaded_at < self._cache_seconds:
            return
        if force or self._cache_seconds <= 0:
            self._keys = await self._load()
            self._loaded_at = now
            return
        # When the schedule expires under load, every request in flight would load it at once;
        # they share the load already under way (started after expiry, so just as fresh).
        loading = self._loading
        if loading is None or now - loading[0] >= self._cache_seconds:
            loading = (now, asyncio.ensure_future(self._load_schedule(now)))
            self._loading = loading
            loading[1].add_done_callback(self._forget(loading))
        await asyncio.shield(loading[1])

    async def _load_schedule(self, now: float) -> None:
        self._keys = await self._load()
        self._loaded_at = now

    def _forget(self, loading: tuple[float, asyncio.Future[None]]) -> Callable[[asyncio.Future[None]], None]:
        def done(future: asyncio.Future[None]) -> None:
            if self._loading is loading:
                self._loading = None
            if not future.cancelled():
                future.exception()  # retrieved here: every waiter may have gone away

        return done

    async def signing_key(self, alg: str) -> SigningKey | None:
        if time.monotonic() - self._loaded_at >= self._cache_seconds:  # refresh()'s own test, minus an await
            await self.refresh()
        now = int(time.time())
        keys = self._keys
        cached = self._signing.get(alg)
        if cached is not None and cached[0] == now and cached[1] is keys:
            return cached[2]
        schedule = active_schedule(keys, alg, now)
        if schedule is None:
            return None
        key = self._private.get(schedule.kid)
        if key is None:
            key = await self._load_private(schedule.kid)
            self._private[schedule.kid] = key
        signing = SigningKey(schedule.kid, schedule.alg, key)
        self._signing[alg] = (now, keys, signing)
        return signing

    async def published_keys(self) -> list[KeySchedule]:
        await self.refresh()
        return published(self._keys, int(time.time()), self._leeway)

    async def jwks_body(self) -> bytes:
        """The JWKS document, serialised once per change of the published set."""
        keys = await self.published_keys()
        kids = tuple(k.kid for k in keys)
        if kids != self._jwks_for:
            self._jwks_body = json.dumps({"keys": [k.public_jwk for k in keys]}, separators=(",", ":")).encode()
            self._jwks_for = kids
        return self._jwks_body

    async def public_key(self, kid: str) -> KeySchedule | None:
        for key in await self.published_keys():
            if key.kid == kid:
                return key
        await self.refresh(force=True)
        return next((k for k in await self.published_keys() if k.kid == kid), None)
