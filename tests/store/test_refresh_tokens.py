"""Refresh tokens (`store.refresh_tokens`) on both databases: read with the user in one
statement, rotated exactly once when two refreshes race (the winner's successor stored with the
rotation), and revoked by family or by user."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import refresh_tokens, users
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    rows = [
        _rows.refresh_token("t1", access_jti="j1", access_exp=NOW + 60),
        _rows.refresh_token("t2", rotated_at=NOW, access_jti="j2", access_exp=NOW + 60),
        _rows.refresh_token("t3"),  # no access token recorded
        _rows.refresh_token("u1", family="f2", sub="alice"),
    ]
    async for db in _rows.database_with(db_url, *rows, pool_size=4):
        yield db


async def test_a_token_is_read_with_its_user(database):
    """The token and its user in one statement; a user deleted since reads as None."""
    token, user = await refresh_tokens.with_user(database, "t1")

    assert token == _rows.refresh_token("t1", access_jti="j1", access_exp=NOW + 60)
    assert user == await users.get(database, "sub-a")
    assert await refresh_tokens.with_user(database, "u1") == (await refresh_tokens.get(database, "u1"), None)
    assert await refresh_tokens.with_user(database, "nope") == (None, None)


async def test_two_simultaneous_rotations_give_exactly_one_winner(database):
    """Of two rotations at once one wins and stores its successor; the loser stores nothing."""
    successors = [_rows.refresh_token(f"s{i}") for i in range(2)]

    won = await asyncio.gather(*(refresh_tokens.rotate(database, "t1", NOW + 1, s) for s in successors))

    assert sorted(won) == [False, True]
    winner = won.index(True)
    rotated = await refresh_tokens.get(database, "t1")
    assert rotated is not None
    assert rotated.rotated_at == NOW + 1
    assert [await refresh_tokens.get(database, f"s{i}") for i in range(2)] == [
        successors[i] if i == winner else None for i in range(2)
    ]


async def test_a_rotated_or_revoked_token_does_not_rotate(database):
    """A token already rotated, or revoked, loses; its would-be successor is not stored."""
    await refresh_tokens.revoke_family(database, "f2", NOW)

    assert not await refresh_tokens.rotate(database, "t2", NOW, _rows.refresh_token("s1"))
    assert not await refresh_tokens.rotate(database, "u1", NOW, None)
    assert await refresh_tokens.get(database, "s1") is None


async def test_revoking_a_family_revokes_every_token_and_names_the_access_tokens(database):
    """Every token of the family is revoked; the access tokens recorded alongside come back."""
    issued = await refresh_tokens.revoke_family(database, "f1", NOW + 5)

    assert sorted(issued) == [("j1", "c1", NOW + 60), ("j2", "c1", NOW + 60)]
    for token_hash in ("t1", "t2", "t3"):
        token = await refresh_tokens.get(database, token_hash)
        assert token is not None
        assert token.revoked_at == NOW + 5
    other = await refresh_tokens.get(database, "u1")
    assert other is not None
    assert other.revoked_at is None


async def test_revoking_a_users_tokens_keeps_the_first_revocation_time(database):
    """`revoke_for_user` revokes the live tokens of that user only; a revoked one keeps its time."""
    await refresh_tokens.revoke_family(database, "f2", NOW)
    await refresh_tokens.revoke_for_user(database, "alice", NOW + 9)
    await refresh_tokens.revoke_for_user(database, "sub-a", NOW + 9)

    u1, t1 = await refresh_tokens.get(database, "u1"), await refresh_tokens.get(database, "t1")

    assert u1 is not None
    assert u1.revoked_at == NOW
    assert t1 is not None
    assert t1.revoked_at == NOW + 9
