"""A login's writes straight to the driver, on both databases: a rotated session takes its
pending requests along, a code stores its consent (merged, never a duplicate key), and the
sweep removes only what has expired."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bastion.store import logins, lookups
from bastion.store.models import AuthorizationCodeRow, AuthorizationRequestRow
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


def _request(request_id: str, session_hash: str, *, expires_at: int = NOW + 60) -> AuthorizationRequestRow:
    return _rows.pending_request(request_id, session_hash, prompt="login consent", max_age=0, expires_at=expires_at)


def _code(code_hash: str, expires_at: int) -> AuthorizationCodeRow:
    return AuthorizationCodeRow(
        code_hash=code_hash,
        client_id="c1",
        sub="sub-a",
        redirect_uri="https://a/cb",
        scope="openid",
        sid="s",
        auth_time=NOW,
        amr="pwd",
        acr="a",
        created_at=NOW,
        expires_at=expires_at,
    )


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url):
        yield db


async def test_a_rotated_session_takes_its_requests_and_the_old_id_stops_working(database):
    await logins.save_session(database, _rows.browser_session("old"), new_request=_request("r1", "ignored"))
    pending = await lookups.pending_request(database, "r1", "old", NOW)
    assert pending is not None

    await logins.save_session(database, _rows.browser_session("new"), replaces="old", satisfied=pending)

    assert await lookups.browser_session(database, "old") is None
    session, moved = await lookups.browser_session_and_request(database, "new", "r1", NOW)
    assert session is not None
    assert session.amr == ""
    assert moved is not None
    assert (moved.session_hash, moved.prompt, moved.max_age) == ("new", "consent", None)


async def test_a_code_merges_its_consent_and_the_sweep_takes_only_what_expired(database):
    await logins.save_session(database, _rows.browser_session("s"), new_request=_request("r1", "s"))
    await logins.save_session(database, _rows.browser_session("t"), new_request=_request("r2", "t", expires_at=NOW - 1))

    await logins.save_code(
        database, _code("c-1", NOW - 3601), pending_id="r1", consent=("openid", "email"), now=NOW, purge=False
    )
    await logins.save_code(
        database, _code("c-2", NOW + 60), pending_id="none", consent=("profile", "openid"), now=NOW, purge=True
    )

    _, granted = await lookups.user_and_consent(database, "sub-a", "c1")
    assert granted == {"openid", "email", "profile"}
    async with database.reads() as session:
        codes = set(await session.scalars(select(AuthorizationCodeRow.code_hash)))
        requests = set(await session.scalars(select(AuthorizationRequestRow.id)))
    assert codes == {"c-2"}  # c-1 expired more than an hour ago
    assert requests == set()  # r1 ended by its code, r2 expired
