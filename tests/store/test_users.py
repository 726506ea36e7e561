"""Users and recovery codes (`store.users`) on both databases: lookups by sub and by name (a
username wins over another user's equal sub), a taken username refused without a driver error,
and the once-only updates (TOTP enrolment, TOTP step, recovery code) with exactly one winner
when two race."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import transaction, users
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    # A second user whose sub equals alice's username.
    async for db in _rows.database_with(db_url, _rows.user("alice", "mallory", enabled=False), pool_size=4):
        yield db


async def test_a_user_is_found_by_sub(database):
    """`get` reads by sub only; an unknown sub is None."""
    mallory = await users.get(database, "alice")

    assert mallory is not None
    assert (mallory.username, mallory.enabled) == ("mallory", False)
    assert await users.get(database, "nobody") is None


async def test_a_name_finds_the_username_before_another_users_equal_sub(database):
    """`find` takes a username or a sub; a username wins over another user's equal sub."""
    by_name = await users.find(database, "alice")
    by_sub = await users.find(database, "sub-a")

    assert by_name is not None
    assert by_name.sub == "sub-a"
    assert by_sub is not None
    assert by_sub.username == "alice"
    assert await users.find(database, "nobody") is None


async def test_a_taken_username_is_refused_and_users_are_listed_oldest_first(database):
    """A second user with a taken username is not stored (False, no duplicate-key error)."""
    assert await users.insert(database, _rows.user("sub-c", "carol", created_at=NOW + 1))
    assert not await users.insert(database, _rows.user("sub-d", "carol"))

    assert [u.username for u in await users.list_all(database)] == ["alice", "mallory", "carol"]


async def test_enabling_and_password_changes_are_stored(database):
    """`set_enabled` and `set_password_hash` change the row and its updated_at."""
    await users.set_enabled(database, "sub-a", False, NOW + 5)
    await users.set_password_hash(database, "alice", "new-hash", NOW + 6)

    alice, mallory = await users.get(database, "sub-a"), await users.get(database, "alice")

    assert alice is not None
    assert (alice.enabled, alice.updated_at) == (False, NOW + 5)
    assert mallory is not None
    assert (mallory.password_hash, mallory.updated_at) == ("new-hash", NOW + 6)


async def test_totp_enrols_once_and_clears(database):
    """A second factor enrols only when none is; clearing it allows a new enrolment."""
    assert await users.enrol_totp(database, "sub-a", b"secret", 10, NOW)
    assert not await users.enrol_totp(database, "sub-a", b"other", 11, NOW)
    enrolled = await users.get(database, "sub-a")

    await users.clear_totp(database, "sub-a", NOW + 1)
    cleared = await users.get(database, "sub-a")

    assert enrolled is not None
    assert (enrolled.totp_secret, enrolled.totp_last_step) == (b"secret", 10)
    assert cleared is not None
    assert (cleared.totp_secret, cleared.totp_last_step, cleared.updated_at) == (None, None, NOW + 1)


async def test_a_totp_step_is_used_once_and_never_an_earlier_one(database):
    """Two simultaneous uses of one step: exactly one wins; an earlier step afterwards loses."""
    results = await asyncio.gather(*(users.use_totp_step(database, "sub-a", 100) for _ in range(2)))

    assert sorted(results) == [False, True]
    assert not await users.use_totp_step(database, "sub-a", 99)
    assert await users.use_totp_step(database, "sub-a", 101)


async def test_a_recovery_code_is_spent_once(database):
    """Two simultaneous uses of one code: exactly one wins; spending all codes ends the rest."""
    async with transaction(database) as tx:
        for code_hash in ("h1", "h2", "h3"):
            await users.add_recovery_code(tx, "sub-a", code_hash)

    results = await asyncio.gather(*(users.use_recovery_code(database, "sub-a", "h1", NOW) for _ in range(2)))
    by_another_user = await users.use_recovery_code(database, "alice", "h2", NOW)
    await users.spend_recovery_codes(database, "sub-a", NOW)

    assert sorted(results) == [False, True]
    assert not by_another_user
    assert not await users.use_recovery_code(database, "sub-a", "h2", NOW)


async def test_require_mfa_is_set_and_cleared(database):
    """`set_require_mfa` marks a user and unmarks them, touching `updated_at`; a new user is unmarked."""
    before = await users.get(database, "sub-a")
    await users.set_require_mfa(database, "sub-a", True, NOW + 5)
    marked = await users.get(database, "sub-a")
    await users.set_require_mfa(database, "sub-a", False, NOW + 6)
    unmarked = await users.get(database, "sub-a")

    assert before is not None
    assert marked is not None
    assert unmarked is not None
    assert before.require_mfa is False
    assert (marked.require_mfa, marked.updated_at) == (True, NOW + 5)
    assert (unmarked.require_mfa, unmarked.updated_at) == (False, NOW + 6)
