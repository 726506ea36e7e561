"""Device codes (`store.device_codes`) on both databases: a colliding user code is refused
without a driver error, expired codes are swept on start, and poll, approve, deny and redeem
each have exactly one winner when two race."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import device_codes
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url, pool_size=4):
        assert await device_codes.start(db, _rows.device_code("d1", "BCDFGHJK"), purge_before=NOW - 3600)
        yield db


async def test_a_taken_user_code_is_refused_and_old_codes_are_swept(database):
    """A second code with a live user code is not stored (False); a start sweeps long-expired codes."""
    assert not await device_codes.start(database, _rows.device_code("d2", "BCDFGHJK"), purge_before=NOW - 3600)
    assert await device_codes.get(database, "d2") is None

    assert await device_codes.start(database, _rows.device_code("d3", "LMNPQRST"), purge_before=NOW + 600)

    assert await device_codes.get(database, "d1") is None  # expired at NOW + 600, swept
    assert await device_codes.get(database, "d3") == _rows.device_code("d3", "LMNPQRST")


async def test_a_pending_code_is_found_by_user_code_only_while_live(database):
    """Only an undecided, unexpired code is found by its user code."""
    assert await device_codes.pending_by_user_code(database, "BCDFGHJK", NOW) == _rows.device_code("d1", "BCDFGHJK")
    assert await device_codes.pending_by_user_code(database, "BCDFGHJK", NOW + 600) is None
    assert await device_codes.deny(database, "BCDFGHJK", sub="sub-a", now=NOW)
    assert await device_codes.pending_by_user_code(database, "BCDFGHJK", NOW) is None


async def test_two_simultaneous_polls_record_one_and_the_other_slows_down(database):
    """Of two polls since the same previous one, one records its time; `slow_down` adds to the interval."""
    won = await asyncio.gather(*(device_codes.record_poll(database, "d1", None, NOW * 1000 + i, 5) for i in range(2)))
    await device_codes.slow_down(database, "d1", NOW * 1000 + 7, 5)

    assert sorted(won) == [False, True]
    polled = await device_codes.get(database, "d1")
    assert polled is not None
    assert (polled.last_poll_at, polled.interval) == (NOW * 1000 + 7, 10)
    assert await device_codes.record_poll(database, "d1", NOW * 1000 + 7, NOW * 1000 + 9000, 10)
    assert not await device_codes.record_poll(database, "d1", None, NOW * 1000 + 9001, 10)


async def test_two_simultaneous_decisions_give_one_winner(database):
    """An approval and a denial at once: exactly one is recorded."""
    approve = device_codes.approve(
        database, "BCDFGHJK", sub="sub-a", sid="sid", auth_time=NOW, amr="pwd", acr="a", now=NOW
    )
    decided = await asyncio.gather(approve, device_codes.deny(database, "BCDFGHJK", sub="sub-a", now=NOW))

    assert sorted(decided) == [False, True]
    row = await device_codes.get(database, "d1")
    assert row is not None
    assert row.status == (device_codes.APPROVED if decided[0] else device_codes.DENIED)
    assert row.decided_at == NOW


async def test_an_approved_code_is_redeemed_exactly_once(database):
    """Redeeming needs an approval; of two redemptions at once one wins."""
    assert not await device_codes.redeem(database, "d1", NOW)
    assert await device_codes.approve(
        database, "BCDFGHJK", sub="sub-a", sid="sid", auth_time=NOW, amr="pwd mfa", acr="a", now=NOW
    )

    redeemed = await asyncio.gather(*(device_codes.redeem(database, "d1", NOW + 1) for _ in range(2)))

    assert sorted(redeemed) == [False, True]
    row = await device_codes.get(database, "d1")
    assert row == _rows.device_code(
        "d1",
        "BCDFGHJK",
        status=device_codes.APPROVED,
        sub="sub-a",
        sid="sid",
        auth_time=NOW,
        amr="pwd mfa",
        acr="a",
        decided_at=NOW,
        redeemed_at=NOW + 1,
    )
