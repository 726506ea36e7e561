"""Refresh tokens (`store.refresh_tokens`) on both databases: read with the user in one
statement, rotated exactly once when two refreshes race (the winner's successor stored with the
rotation), and revoked by family or by user."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bastion.store import refresh_tokens, users
from bastion.store.refresh_tokens import RefreshTokenRow
from tests._statements import counting, kinds
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


def _successor(token_hash: str) -> refresh_tokens.Successor:
    return refresh_tokens.Successor(token_hash, NOW + 300, f"jti-{token_hash}", NOW + 60)


def _stored(token_hash: str, now: int, *, family_expires_at: int = NOW + 6000) -> RefreshTokenRow:
    """The successor `_successor(token_hash)` as a rotation at `now` stores it (family f1)."""
    return _rows.refresh_token(
        token_hash,
        created_at=now,
        expires_at=min(NOW + 300, family_expires_at),
        family_expires_at=family_expires_at,
        access_jti=f"jti-{token_hash}",
        access_exp=NOW + 60,
    )


async def test_a_rotation_spends_the_token_stores_its_successor_and_reads_the_user(database):
    """A live token is spent; its successor copies the family, user, scope and login and gets
    the new hash, idle expiry and access token; the spent token comes back with its user."""
    spent = await refresh_tokens.rotate(database, "t1", "c1", NOW + 1, _successor("s1"))

    assert spent == (
        replace(_rows.refresh_token("t1", access_jti="j1", access_exp=NOW + 60), rotated_at=NOW + 1),
        await users.get(database, "sub-a"),
    )
    assert await refresh_tokens.get(database, "s1") == _stored("s1", NOW + 1)


async def test_a_successor_never_outlives_its_family(database):
    """The successor's idle expiry is capped by the family's absolute expiry."""
    await _rows.store(database, _rows.refresh_token("t9", family_expires_at=NOW + 100))

    assert await refresh_tokens.rotate(database, "t9", "c1", NOW, _successor("s9")) is not None
    assert await refresh_tokens.get(database, "s9") == _stored("s9", NOW, family_expires_at=NOW + 100)


async def test_two_simultaneous_rotations_give_exactly_one_winner(database):
    """Of two rotations at once one wins and stores its successor; the loser stores nothing."""
    racing = (refresh_tokens.rotate(database, "t1", "c1", NOW + 1, _successor(f"s{i}")) for i in range(2))
    spent = await asyncio.gather(*racing)

    won = [s is not None for s in spent]
    assert sorted(won) == [False, True]
    winner = won.index(True)
    rotated = await refresh_tokens.get(database, "t1")
    assert rotated is not None
    assert rotated.rotated_at == NOW + 1
    assert [await refresh_tokens.get(database, f"s{i}") for i in range(2)] == [
        _stored(f"s{i}", NOW + 1) if i == winner else None for i in range(2)
    ]


@pytest.mark.parametrize(
    ("token_hash", "client_id", "now", "disable"),
    [
        pytest.param("t2", "c1", NOW, False, id="rotated"),
        pytest.param("f2-revoked", "c1", NOW, False, id="revoked"),
        pytest.param("t1", "c2", NOW, False, id="another-client"),
        pytest.param("nope", "c1", NOW, False, id="unknown"),
        pytest.param("t1", "c1", NOW + 600, False, id="idle-expired"),
        pytest.param("t1", "c1", NOW, True, id="user-disabled"),
        pytest.param("u1", "c1", NOW, False, id="user-deleted"),
    ],
)
async def test_a_token_that_is_not_live_does_not_rotate(database, token_hash, client_id, now, disable):
    """A token rotated, revoked, another client's, unknown, expired, or whose user is disabled or
    gone is not spent, and its would-be successor is not stored."""
    await _rows.store(database, _rows.refresh_token("f2-revoked", family="f3", revoked_at=NOW))
    if disable:
        await users.set_enabled(database, "sub-a", False, NOW)
    unchanged = await refresh_tokens.get(database, token_hash)

    assert await refresh_tokens.rotate(database, token_hash, client_id, now, _successor("s1")) is None
    assert await refresh_tokens.get(database, token_hash) == unchanged
    assert await refresh_tokens.get(database, "s1") is None


async def test_a_rotation_is_one_statement_on_postgresql(database):
    """The spend, the successor and the user: one statement on PostgreSQL; on SQLite one
    transaction of three."""
    async with counting(database) as seen:
        assert await refresh_tokens.rotate(database, "t1", "c1", NOW, _successor("s1")) is not None

    expected = ["BEGIN", "UPDATE", "INSERT", "SELECT", "COMMIT"] if database.is_sqlite else ["WITH"]
    assert kinds(seen) == expected


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
