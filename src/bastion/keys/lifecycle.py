"""The life of a signing key, as data in the database: created (and published at once), active
from `activates_at`, superseded by a newer key or retired, published until its tokens expire.

Several processes agree on which key signs because this schedule lives in the database, never
only in a process; the key ring (`keyring.KeyRing`) reads it through `key_ring`. Creating a key
stores its private half encrypted under the key-encryption key, with the kid as associated data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from bastion.events import audit
from bastion.keys.encryption import KeyEncryptor
from bastion.keys.keyring import KeyRing, KeySchedule, active_schedule, published, signs_until
from bastion.keys.material import PrivateKey, generate_signing_key, load_private_pem, private_pem
from bastion.store import Database, signing_keys, transaction
from bastion.store.signing_keys import SigningKeyRow

SIGNING_ALGORITHMS = ("ES256", "RS256", "PS256")


class KeyLifecycleError(ValueError):
    """A request about keys the CLI refuses with this message."""


async def schedules(database: Database) -> list[KeySchedule]:
    """Every stored key as the key ring schedules it, in the order they start signing."""
    return [
        KeySchedule(key.kid, key.alg, json.loads(key.public_jwk), key.activates_at, key.retired_at)
        for key in await signing_keys.list_all(database)
    ]


def key_ring(database: Database, encryptor: KeyEncryptor, *, cache_seconds: float, leeway: int) -> KeyRing:
    """The process's key ring over the stored schedule (private halves decrypted on first use)."""

    async def load() -> list[KeySchedule]:
        return await schedules(database)

    async def load_private(kid: str) -> PrivateKey:
        key = await signing_keys.get(database, kid)
        if key is None:
            raise LookupError(kid)
        return load_private_pem(encryptor.decrypt(key.private_key, kid))

    return KeyRing(load, load_private, cache_seconds=cache_seconds, leeway=leeway)


async def create(database: Database, encryptor: KeyEncryptor, alg: str, activates_at: int) -> str:
    """Store a new key of `alg` that signs from `activates_at`; its kid."""
    key, jwk = generate_signing_key(alg)
    kid = str(jwk["kid"])
    now = int(time.time())
    row = SigningKeyRow(
        kid=kid,
        alg=alg,
        private_key=encryptor.encrypt(private_pem(key), kid),
        public_jwk=json.dumps(jwk),
        created_at=now,
        activates_at=activates_at,
        retired_at=None,
    )
    await signing_keys.insert(database, row)
    return kid


def check_algorithm(alg: str) -> None:
    """Keys are made for the algorithms the server signs with."""
    if alg not in SIGNING_ALGORITHMS:
        raise KeyLifecycleError(f"--alg must be {', '.join(SIGNING_ALGORITHMS[:-1])} or {SIGNING_ALGORITHMS[-1]}")


async def rotate(database: Database, encryptor: KeyEncryptor, alg: str, prepublication: int) -> dict[str, Any]:
    """Add a key that is published now and signs after `prepublication` seconds (at once when no
    key of `alg` signs), so resource servers caching the JWKS already know it."""
    check_algorithm(alg)
    now = int(time.time())
    current = active_schedule(await schedules(database), alg, now)
    # Never tie with the current key's activation: the newest activation signs, and a tie would
    # fall back to comparing kids.
    activates_at = now if current is None else max(now + prepublication, current.activates_at + 1)
    kid = await create(database, encryptor, alg, activates_at)
    audit("key_rotated", kid=kid, alg=alg, activates_at=activates_at, previous_kid=current.kid if current else None)
    return {"kid": kid, "alg": alg, "activates_at": activates_at}


async def retire(database: Database, kid: str) -> dict[str, Any]:
    """Stop a key signing now; it stays published until the tokens it signed have expired. The
    only active key of its algorithm cannot be retired (nothing would sign)."""
    now = int(time.time())
    async with transaction(database) as tx:
        row = await signing_keys.get(tx, kid)
        if row is None:
            raise KeyLifecycleError(f"no key {kid}")
        if row.retired_at is not None:
            raise KeyLifecycleError(f"key {kid} is already retired")
        others = [o for o in await signing_keys.of_alg(tx, row.alg) if o.kid != kid]
        if not any(o.retired_at is None and o.activates_at <= now for o in others) and row.activates_at <= now:
            raise KeyLifecycleError(
                f"{kid} is the only active {row.alg} key; run `bastion keys rotate --alg {row.alg}` first"
            )
        await signing_keys.retire(tx, kid, now)
    audit("key_retired", kid=kid, retired_at=now)
    return {"kid": kid, "retired_at": now}


def _state(key: KeySchedule, active: KeySchedule | None, shown: set[str], now: int) -> str:
    if active == key:
        return "active"
    if key.activates_at > now:
        return "pending"
    return "retired" if key.kid in shown else "expired"


async def describe_all(database: Database, leeway: int) -> list[dict[str, Any]]:
    """Every stored key with its state (pending, active, retired, expired) and publication."""
    now = int(time.time())
    keys = await schedules(database)
    shown = {k.kid for k in published(keys, now, leeway)}
    active = {alg: active_schedule(keys, alg, now) for alg in {k.alg for k in keys}}
    return [
        {
            "kid": key.kid,
            "alg": key.alg,
            "state": _state(key, active.get(key.alg), shown, now),
            "activates_at": key.activates_at,
            "signs_until": signs_until(key, keys),
            "published": key.kid in shown,
        }
        for key in keys
    ]


async def inactive(database: Database, algorithms: Iterable[str]) -> list[str]:
    """Those of `algorithms` that no key signs with now."""
    keys, now = await schedules(database), int(time.time())
    return [alg for alg in dict.fromkeys(algorithms) if active_schedule(keys, alg, now) is None]


async def undecryptable(database: Database, encryptor: KeyEncryptor, algorithms: Iterable[str]) -> list[str]:
    """The kids of the keys signing for `algorithms` now whose private half `encryptor` cannot
    decrypt (another key-encryption key made them: a restored database served with the wrong one)."""
    keys, now = await schedules(database), int(time.time())
    found = []
    for alg in dict.fromkeys(algorithms):
        active = active_schedule(keys, alg, now)
        stored = await signing_keys.get(database, active.kid) if active is not None else None
        if stored is None:
            continue
        try:
            encryptor.decrypt(stored.private_key, stored.kid)
        except ValueError:
            found.append(stored.kid)
    return found


async def ensure_active(database: Database, encryptor: KeyEncryptor, algorithms: Iterable[str]) -> list[str]:
    """Create a key, active at once, for each of `algorithms` that lacks one (development mode);
    the kids created."""
    now = int(time.time())
    return [await create(database, encryptor, alg, now) for alg in await inactive(database, algorithms)]
