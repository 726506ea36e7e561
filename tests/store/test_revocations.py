"""Revocations and the client-assertion replay cache (`store.revocations`) on both databases: a
revoked jti is found until it expires, a repeated revocation keeps the first, and an assertion's
jti is accepted exactly once even when two uses race, with expired entries forgotten first."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import revocations
from bastion.store.revocations import ASSERTION_REPLAY_MARGIN, RevokedTokenRow
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url, pool_size=4):
        yield db


async def test_a_revocation_is_kept_once_and_listed_until_it_expires(database):
    """The first revocation of a jti stands; the list has the unexpired ones since a time, oldest first."""
    await revocations.record(database, "j1", "c1", NOW + 60, NOW)
    await revocations.record(database, "j1", "c2", NOW + 90, NOW + 5)
    await revocations.record(database, "j2", "c1", NOW + 10, NOW + 1)
    await revocations.record(database, "j3", "c1", NOW + 60, NOW - 10)

    assert await revocations.is_revoked(database, "j1")
    assert not await revocations.is_revoked(database, "j9")
    assert await revocations.since(database, NOW, NOW) == [
        RevokedTokenRow("j1", "c1", NOW + 60, NOW),
        RevokedTokenRow("j2", "c1", NOW + 10, NOW + 1),
    ]
    assert await revocations.since(database, NOW, NOW + 10) == [RevokedTokenRow("j1", "c1", NOW + 60, NOW)]


async def test_an_assertion_is_used_once_even_when_two_uses_race(database):
    """Of two uses of one jti at once exactly one is accepted; the same jti of another client is its own."""
    used = await asyncio.gather(*(revocations.use_assertion(database, "c1", "a1", NOW + 60, NOW) for _ in range(2)))

    assert sorted(used) == [False, True]
    assert await revocations.use_assertion(database, "c2", "a1", NOW + 60, NOW)
    assert not await revocations.use_assertion(database, "c1", "a1", NOW + 60, NOW + 30)


async def test_an_assertion_is_remembered_for_the_replay_margin_past_its_expiry(database):
    """A jti is forgotten only once it is more than the margin past its exp (RFC 7523 §3 item 7)."""
    assert await revocations.use_assertion(database, "c1", "a1", NOW, NOW)

    assert not await revocations.use_assertion(database, "c1", "a1", NOW, NOW + ASSERTION_REPLAY_MARGIN)
    assert await revocations.use_assertion(database, "c1", "a1", NOW, NOW + ASSERTION_REPLAY_MARGIN + 1)
