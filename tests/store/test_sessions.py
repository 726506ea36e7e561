"""Browser sessions and their pending requests (`store.sessions`, `store.pending_requests`) on
both databases: a session is read with its own unexpired request in one statement, a rotated
session takes its requests along, the authorization endpoint reads a session with its user and
their consent in one statement, an ended one takes them with it, and a device request keeps
its kind and user code."""

from __future__ import annotations

import pytest

from bastion.store import consents, pending_requests, sessions, users
from tests._statements import counting
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url):
        await sessions.save(db, _rows.browser_session("h1", sid="sid1", amr="pwd"))
        await sessions.save(db, _rows.browser_session("h2", sub=None, stage="anonymous", auth_time=None))
        await _rows.store(
            db,
            _rows.pending_request("r1", "h1", expires_at=NOW + 10),
            _rows.pending_request("r2", "h2", expires_at=NOW + 10),
            _rows.pending_request("r3", "h1", expires_at=NOW),
        )
        yield db


async def test_a_session_is_joined_only_with_its_own_unexpired_request(database):
    """The request comes along only if it is bound to the session and unexpired."""
    session, pending = await sessions.get_with_request(database, "h1", "r1", NOW)

    assert session == _rows.browser_session("h1", sid="sid1", amr="pwd")
    assert pending == _rows.pending_request("r1", "h1", expires_at=NOW + 10)
    assert (await sessions.get_with_request(database, "h1", "r2", NOW))[1] is None  # another session's
    assert (await sessions.get_with_request(database, "h1", "r3", NOW))[1] is None  # expired
    assert (await sessions.get_with_request(database, "h1", "nope", NOW))[1] is None
    assert await sessions.get_with_request(database, "nope", "r1", NOW) == (None, None)


async def test_a_session_is_read_with_its_user_and_their_consent_to_one_client(database):
    """One statement: the session, its user, and the scopes granted to the client named (none
    for another client, an anonymous session, or an unknown session)."""
    await consents.merge(database, "sub-a", "c1", ("openid", "email"), NOW)

    async with counting(database) as seen:
        session, account = await sessions.get_with_account(database, "h1", "c1")

    assert len(seen) == 1
    assert session == _rows.browser_session("h1", sid="sid1", amr="pwd")
    assert account == sessions.Account("c1", await users.get(database, "sub-a"), frozenset({"openid", "email"}))
    assert (await sessions.get_with_account(database, "h1", "c2"))[1].granted == frozenset()
    anonymous, nobody = await sessions.get_with_account(database, "h2", "c1")
    assert anonymous is not None
    assert nobody == sessions.Account("c1", None, frozenset())
    assert await sessions.get_with_account(database, "nope", "c1") == (None, sessions.Account("c1", None, frozenset()))


async def test_a_pending_request_is_found_only_through_its_session_and_unexpired(database):
    """`pending_requests.get` is bound to the session and to the clock, like the join."""
    assert await pending_requests.get(database, "r1", "h1", NOW) is not None
    assert await pending_requests.get(database, "r2", "h1", NOW) is None
    assert await pending_requests.get(database, "r3", "h1", NOW) is None


async def test_nulls_of_an_anonymous_session_come_back_as_none(database):
    """An anonymous session's NULL sub and auth_time read back as None."""
    session = await sessions.get(database, "h2")

    assert session is not None
    assert (session.sub, session.auth_time, session.stage) == (None, None, "anonymous")


async def test_a_rotated_session_takes_its_requests_and_the_old_id_stops_working(database):
    """The new session gets the old one's requests; the one just logged in for has prompt=login met."""
    pending = await pending_requests.get(database, "r1", "h1", NOW)
    login = _rows.pending_request("r4", "ignored", prompt="login consent", max_age=0)

    await sessions.save(database, _rows.browser_session("h3", sid="sid3"), replaces="h1", new_request=login)
    await sessions.save(database, _rows.browser_session("h4", sid="sid4"), replaces="h3", satisfied=login)

    assert pending is not None
    assert await sessions.get(database, "h1") is None
    assert await sessions.get(database, "h3") is None
    session, moved = await sessions.get_with_request(database, "h4", "r1", NOW)
    assert session is not None
    assert moved is not None
    assert moved.session_hash == "h4"
    satisfied = await pending_requests.get(database, "r4", "h4", NOW)
    assert satisfied is not None
    assert (satisfied.prompt, satisfied.max_age) == ("consent", None)


async def test_an_ended_session_takes_its_requests_with_it(database):
    """Ending a session deletes it and its pending requests, not another session's."""
    await sessions.end(database, "h1")

    assert await sessions.get(database, "h1") is None
    assert await pending_requests.get(database, "r1", "h1", NOW) is None
    assert await pending_requests.get(database, "r2", "h2", NOW) is not None


async def test_touch_and_expire_for_user(database):
    """`touch` records the last use; `expire_for_user` ends every session of that user at once."""
    await sessions.touch(database, "h1", NOW + 30)
    touched = await sessions.get(database, "h1")
    await sessions.expire_for_user(database, "sub-a")
    expired = await sessions.get(database, "h1")
    anonymous = await sessions.get(database, "h2")

    assert touched is not None
    assert touched.last_seen_at == NOW + 30
    assert expired is not None
    assert expired.expires_at == 0
    assert anonymous is not None
    assert anonymous.expires_at == NOW + 60


async def test_a_device_request_keeps_its_kind_and_user_code(database):
    """A device request is its own kind of row: no redirect URI, its user code in its own column."""
    device = _rows.pending_request(
        "d1", "h1", redirect_uri="", kind=pending_requests.DEVICE, user_code="BCDFGHJK", expires_at=NOW + 10
    )
    await pending_requests.insert(database, device)

    assert await pending_requests.get(database, "d1", "h1", NOW) == device
    found = await pending_requests.get(database, "r1", "h1", NOW)
    assert found is not None
    assert (found.kind, found.user_code) == (pending_requests.AUTHORIZATION, None)


async def test_ending_and_purging_requests(database):
    """`end` forgets one request; `purge_expired` every expired one and nothing else."""
    await pending_requests.end(database, "r2")
    await pending_requests.purge_expired(database, NOW + 5, batch=10)

    assert await pending_requests.get(database, "r2", "h2", NOW) is None
    assert await pending_requests.get(database, "r1", "h1", NOW) is not None
    await pending_requests.purge_expired(database, NOW + 11, batch=10)
    assert await pending_requests.get(database, "r1", "h1", NOW) is None
