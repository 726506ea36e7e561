"""The store functions the admin operations add (issue 14 item 8), on both databases: a client's
changeable columns updated and the client deleted with its secrets; a user's roles replaced and
the user deleted with their sessions; a user's live sessions and grants listed, a session found by
its public sid."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bastion.store import clients, refresh_tokens, sessions, users
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    rows = (
        _rows.refresh_token("t-live", family="f-live"),
        _rows.refresh_token("t-rotated", family="f-live", rotated_at=NOW),
        _rows.refresh_token("t-revoked", family="f-revoked", revoked_at=NOW),
        _rows.refresh_token("t-dead", family="f-dead", family_expires_at=NOW - 1),
        _rows.refresh_token("t-other", family="f-other", sub="sub-b"),
    )
    async for db in _rows.database_with(db_url, _rows.user("sub-b", "bob"), *rows):
        yield db


async def test_a_clients_changeable_columns_are_updated_and_the_client_deleted(database):
    """`update_row` stores every column but the id and creation time; `delete_row` removes the
    client and its secrets; both say False for an unknown client."""
    c1 = await clients.get(database, "c1")
    assert c1 is not None
    await clients.add_secret(database, "c1", "hash", NOW)

    assert await clients.update_row(database, replace(c1, scopes="a b", created_at=0, updated_at=NOW + 1))
    assert not await clients.update_row(database, replace(c1, client_id="nobody"))
    changed = await clients.get(database, "c1")
    assert changed is not None
    assert (changed.scopes, changed.created_at, changed.updated_at) == ("a b", NOW, NOW + 1)

    assert await clients.delete_row(database, "c1")
    assert not await clients.delete_row(database, "c1")
    assert await clients.get(database, "c1") is None
    assert await clients.valid_secret_hashes(database, "c1", NOW) == []


async def test_roles_are_replaced_and_a_user_deleted_with_their_sessions(database):
    """`set_roles` replaces the roles; `delete_row` removes the user and (cascade) their sessions."""
    await sessions.save(database, _rows.browser_session("h1", sub="sub-b"))
    await users.set_roles(database, "sub-b", "admin billing", NOW + 1)
    bob = await users.get(database, "sub-b")
    assert bob is not None
    assert bob.roles == "admin billing"

    assert await users.delete_row(database, "sub-b")
    assert not await users.delete_row(database, "sub-b")
    assert await sessions.get(database, "h1") is None


async def test_live_sessions_and_grants_of_a_user_are_listed(database):
    """`list_for_user` skips expired sessions; `get_by_sid` finds only the user's own session;
    `live_for_user` lists each live family's current token only."""
    await sessions.save(database, _rows.browser_session("h1", created_at=NOW))
    await sessions.save(database, _rows.browser_session("h2", expires_at=NOW - 1))
    await sessions.save(database, _rows.browser_session("h3", sub="sub-b"))

    assert [s.id_hash for s in await sessions.list_for_user(database, "sub-a", NOW)] == ["h1"]
    found = await sessions.get_by_sid(database, "sub-a", "sid-h1")
    assert found is not None
    assert found.id_hash == "h1"
    assert await sessions.get_by_sid(database, "sub-a", "sid-h3") is None
    assert [t.token_hash for t in await refresh_tokens.live_for_user(database, "sub-a", NOW)] == ["t-live"]
