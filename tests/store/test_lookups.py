"""The pages' lookups and the grants' statements, straight to the driver, on both databases:
the same rows and types as the ORM would give, and None (never a partial row) when absent."""

from __future__ import annotations

import pytest

from bastion.store import Database, lookups
from bastion.store import grants as grant_statements
from bastion.store.models import AuthorizationRequestRow, BrowserSessionRow, ClientRow, ConsentRow, UserRow

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000


def _user(sub: str, username: str) -> UserRow:
    return UserRow(
        sub=sub,
        username=username,
        email=f"{username}@example.com",
        email_verified=True,
        display_name=username.title(),
        profile="{}",
        roles="admin",
        enabled=False,
        password_hash="x",
        totp_secret=b"\x00\x01",
        totp_last_step=None,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.fixture
async def database(db_url: str):
    db = Database(db_url, pool_size=1)
    await db.upgrade()
    async with db.sessions() as session, session.begin():
        session.add_all([_user("sub-a", "alice"), _user("alice", "mallory")])
        for client_id in ("c1", "c2"):
            session.add(
                ClientRow(
                    client_id=client_id,
                    name=client_id,
                    client_type="public",
                    auth_method="none",
                    grant_types="authorization_code",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        await session.flush()
        session.add(
            BrowserSessionRow(
                id_hash="h1",
                sid="sid1",
                sub="sub-a",
                stage="authenticated",
                amr="pwd",
                auth_time=NOW,
                csrf_token="c",
                created_at=NOW,
                last_seen_at=NOW,
                expires_at=NOW + 60,
            )
        )
        requests = (("r1", "h1", NOW + 10), ("r2", "other", NOW + 10), ("r3", "h1", NOW))
        for request_id, session_hash, expires_at in requests:
            session.add(
                AuthorizationRequestRow(
                    id=request_id,
                    session_hash=session_hash,
                    client_id="c1",
                    redirect_uri="https://a/cb",
                    scope="openid",
                    prompt="",
                    created_at=NOW,
                    expires_at=expires_at,
                )
            )
        session.add(ConsentRow(sub="sub-a", client_id="c1", scopes="openid email", granted_at=NOW))
    yield db
    await db.dispose()


async def test_a_user_comes_back_with_python_types(database):
    user = await lookups.user(database, "sub-a")
    assert user is not None
    assert (user.username, user.enabled, user.email_verified, user.totp_secret) == ("alice", False, True, b"\x00\x01")
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
