"""API keys (`store.api_keys`) on both databases: a key is stored and read back whole, listed
oldest first; a revocation keeps its first time and says when there is no such key; a rotation
retires an active key once (the overlap never lengthens its life) and stores its successor in the
same transaction; a last use is written at most once per resolution; an import keeps what is
already stored; and concurrent revocations, rotations and touches never undo one another."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import api_keys
from bastion.store.api_keys import ApiKeyRow
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


def key(key_id: str, **fields: object) -> ApiKeyRow:
    values: dict[str, object] = {
        "key_id": key_id,
        "owner": "billing",
        "scopes": "notes:read notes:stats",
        "sha256": key_id[0] * 64,
        "created_at": NOW,
    }
    return ApiKeyRow(**{**values, **fields})  # type: ignore[arg-type]


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url, pool_size=4):
        yield db


async def test_a_key_is_stored_and_read_back_and_listed_oldest_first(database):
    """What create stores, get returns field for field; list_all orders by creation time."""
    later = key("b" * 12, created_at=NOW + 5, expires_at=NOW + 100, owner="reports", scopes="")
    await api_keys.create(database, later)
    await api_keys.create(database, key("a" * 12))

    assert await api_keys.get(database, "b" * 12) == later
    assert await api_keys.get(database, "z" * 12) is None
    assert [k.key_id for k in await api_keys.list_all(database)] == ["a" * 12, "b" * 12]


async def test_a_revocation_keeps_its_first_time_and_an_unknown_key_is_said(database):
    """revoke is True for a stored key (again True, its first time kept) and False for no key."""
    await api_keys.create(database, key("a" * 12))

    assert await api_keys.revoke(database, "a" * 12, NOW + 1)
    assert await api_keys.revoke(database, "a" * 12, NOW + 9)
    assert not await api_keys.revoke(database, "n" * 12, NOW)
    assert (await api_keys.get(database, "a" * 12)).revoked_at == NOW + 1  # type: ignore[union-attr]


async def test_a_rotation_retires_the_key_once_and_stores_its_successor(database):
    """The old key expires at the end of the overlap and names its successor; a second rotation
    of it, or a rotation of a revoked, expired or unknown key, stores nothing."""
    await api_keys.create(database, key("a" * 12))
    await api_keys.create(database, key("r" * 12, revoked_at=NOW))
    await api_keys.create(database, key("e" * 12, expires_at=NOW + 10))
    successor = key("s" * 12, created_at=NOW + 20)

    retired = await api_keys.rotate(database, "a" * 12, successor, 60)
    again = await api_keys.rotate(database, "a" * 12, key("t" * 12, created_at=NOW + 21), 60)
    refused = [
        await api_keys.rotate(database, old, key("u" * 12, created_at=NOW + 20), 60)
        for old in ("r" * 12, "e" * 12, "n" * 12)
    ]

    assert retired == key("a" * 12, expires_at=NOW + 80, replaced_by="s" * 12)
    assert await api_keys.get(database, "s" * 12) == successor
    assert again is None
    assert refused == [None, None, None]
    assert {k.key_id for k in await api_keys.list_all(database)} == {c * 12 for c in "ares"}


async def test_a_rotation_never_lengthens_a_keys_life(database):
    """A key due to expire before the end of the overlap keeps its own expiry."""
    await api_keys.create(database, key("a" * 12, expires_at=NOW + 30))

    retired = await api_keys.rotate(database, "a" * 12, key("s" * 12), 3600)

    assert retired is not None
    assert retired.expires_at == NOW + 30


async def test_a_last_use_is_written_at_most_once_per_resolution(database):
    """touch writes when the last use is older than the resolution, never for a revoked key."""
    await api_keys.create(database, key("a" * 12))
    await api_keys.create(database, key("r" * 12, revoked_at=NOW))

    writes = [
        await api_keys.touch(database, "a" * 12, NOW + 1, 60),
        await api_keys.touch(database, "a" * 12, NOW + 30, 60),
        await api_keys.touch(database, "a" * 12, NOW + 61, 60),
        await api_keys.touch(database, "r" * 12, NOW + 1, 60),
    ]

    assert writes == [True, False, True, False]
    assert (await api_keys.get(database, "a" * 12)).last_used_at == NOW + 61  # type: ignore[union-attr]


async def test_an_import_keeps_what_is_already_stored(database):
    """Keys imported twice are stored once; a stored key is not overwritten by the file's."""
    await api_keys.create(database, key("a" * 12, revoked_at=NOW))

    first = await api_keys.import_keys(database, [key("a" * 12), key("b" * 12)])
    second = await api_keys.import_keys(database, [key("a" * 12), key("b" * 12)])

    assert (first, second) == (1, 0)
    assert (await api_keys.get(database, "a" * 12)).revoked_at == NOW  # type: ignore[union-attr]


async def test_concurrent_rotations_give_one_successor_and_touches_never_undo_a_revocation(database):
    """Of rotations racing on one key exactly one wins; touches racing with a revocation leave the
    key revoked."""
    await api_keys.create(database, key("a" * 12))
    await api_keys.create(database, key("b" * 12))

    rotations = await asyncio.gather(
        *(api_keys.rotate(database, "a" * 12, key(f"s{i:011d}", created_at=NOW + 1), 60) for i in range(6))
    )
    await asyncio.gather(
        api_keys.revoke(database, "b" * 12, NOW + 2),
        *(api_keys.touch(database, "b" * 12, NOW + 2 + i, 0) for i in range(6)),
    )

    assert sum(r is not None for r in rotations) == 1
    assert len(await api_keys.list_all(database)) == 3
    assert (await api_keys.get(database, "b" * 12)).revoked_at == NOW + 2  # type: ignore[union-attr]
