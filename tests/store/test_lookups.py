"""The pages' lookups and the grants' statements, straight to the driver, on both databases:
the same rows and types as the ORM would give, and None (never a partial row) when absent."""

from __future__ import annotations

import pytest

from bastion.store import grants as grant_statements
from bastion.store import lookups
from bastion.store.models import ConsentRow
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    rows = [
        # A second user whose sub equals alice's username.
        _rows.user("alice", "mallory", enabled=False, totp_secret=b"\x00\x01"),
        _rows.browser_session("h1", sid="sid1", amr="pwd"),
        _rows.pending_request("r1", "h1", expires_at=NOW + 10),
        _rows.pending_request("r2", "other", expires_at=NOW + 10),
        _rows.pending_request("r3", "h1", expires_at=NOW),
        ConsentRow(sub="sub-a", client_id="c1", scopes="openid email", granted_at=NOW),
    ]
    async for db in _rows.database_with(db_url, *rows):
        yield db


async def test_a_user_comes_back_with_python_types(database):
    user = await lookups.user(database, "alice")  # mallory, whose sub is "alice"
    assert user is not None
    assert (user.username, user.enabled, user.email_verified, user.totp_secret) == ("mallory", False, True, b"\x00\x01")
    assert user.enabled is False
    assert user.email_verified is True
    assert await lookups.user(database, "nobody") is None


async def test_a_name_finds_the_username_before_another_users_equal_sub(database):
    by_name = await lookups.user_by_name(database, "alice")
    assert by_name is not None
    assert by_name.sub == "sub-a"
    by_sub = await lookups.user_by_name(database, "sub-a")
    assert by_sub is not None
    assert by_sub.username == "alice"
    assert await lookups.user_by_name(database, "nobody") is None


async def test_a_session_is_joined_only_with_its_own_unexpired_request(database):
    session, pending = await lookups.browser_session_and_request(database, "h1", "r1", NOW)
    assert session is not None
    assert session.sid == "sid1"
    assert pending is not None
    assert pending.id == "r1"
    assert (await lookups.browser_session_and_request(database, "h1", "r2", NOW))[1] is None  # another session's
    assert (await lookups.browser_session_and_request(database, "h1", "r3", NOW))[1] is None  # expired
    assert (await lookups.browser_session_and_request(database, "h1", "nope", NOW))[1] is None
    assert await lookups.browser_session_and_request(database, "nope", "r1", NOW) == (None, None)
    assert await lookups.pending_request(database, "r1", "h1", NOW) is not None
    assert await lookups.pending_request(database, "r2", "h1", NOW) is None
    assert await lookups.pending_request(database, "r3", "h1", NOW) is None


async def test_user_and_consent(database):
    user, granted = await lookups.user_and_consent(database, "sub-a", "c1")
    assert user is not None
    assert granted == {"openid", "email"}
    user, granted = await lookups.user_and_consent(database, "sub-a", "c2")
    assert user is not None
    assert granted == frozenset()
    assert await lookups.user_and_consent(database, "nobody", "c1") == (None, frozenset())


async def test_an_unknown_code_or_refresh_token_is_none_without_a_user(database):
    assert await grant_statements.code_and_user(database, "nope") == (None, None)
    assert await grant_statements.refresh_and_user(database, "nope") == (None, None)
