"""Revocations and the client-assertion replay cache (`store.revocations`) on both databases: a
revoked jti is found until it expires, a repeated revocation keeps the first, and an assertion's
jti is accepted exactly once even when two uses race, with expired entries forgotten first; the
revocation list pages without skipping or repeating ties."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import revocations
from bastion.store.revocations import ASSERTION_REPLAY_MARGIN, LEEWAY_MARGIN, RevokedTokenRow
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url, pool_size=4):
        yield db


async def test_a_revocation_is_kept_once_and_listed_while_a_validator_may_accept_it(database):
    """The first revocation of a jti stands; the list has those made after a position whose token is
    less than LEEWAY_MARGIN past its exp (a validator accepts it until exp + leeway), oldest first."""
    await revocations.record(database, "j1", "c1", NOW + 60, NOW)
    await revocations.record(database, "j1", "c2", NOW + 90, NOW + 5)
    await revocations.record(database, "j2", "c1", NOW + 10, NOW + 1)
    await revocations.record(database, "j3", "c1", NOW + 60, NOW - 10)

    assert await revocations.is_revoked(database, "j1")
    assert not await revocations.is_revoked(database, "j9")
    both = [RevokedTokenRow("j1", "c1", NOW + 60, NOW), RevokedTokenRow("j2", "c1", NOW + 10, NOW + 1)]
    assert await revocations.page(database, (NOW, ""), NOW) == both
    assert await revocations.page(database, (NOW, ""), NOW + 10 + LEEWAY_MARGIN - 1) == both
    assert await revocations.page(database, (NOW, ""), NOW + 10 + LEEWAY_MARGIN) == both[:1]


async def test_pages_neither_skip_nor_repeat_revocations_made_in_the_same_second(database):
    """Pages ordered by (revoked_at, jti), each strictly after the last row of the one before, list
    every revocation exactly once however many share a second."""
    for jti in ("e", "a", "d", "c", "b"):
        await revocations.record(database, jti, "c1", NOW + 60, NOW)
    await revocations.record(database, "f", "c1", NOW + 60, NOW + 1)
    await revocations.record(database, "before", "c1", NOW + 60, NOW - 1)
    seen: list[str] = []
    after = (NOW, "")
    while True:
        rows = await revocations.page(database, after, NOW, limit=2)
        seen += [r.jti for r in rows]
        if len(rows) < 2:
            break
        after = (rows[-1].revoked_at, rows[-1].jti)

    assert seen == ["a", "b", "c", "d", "e", "f"]


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
