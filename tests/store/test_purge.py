"""Each store module's purge of expired rows: what it deletes, what it keeps, and its batch bound."""

from __future__ import annotations

import pytest

from bastion.store import codes, device_codes, pending_requests, refresh_tokens, revocations, sessions
from tests.store import _rows
from tests.store._rows import KEPT, NOW, SWEPT

pytestmark = pytest.mark.anyio

IDLE = 1800


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url):
        await _rows.store_expiring(db, NOW, IDLE)
        yield db


PURGES = [
    pytest.param(
        "browser_sessions",
        lambda db, batch: sessions.purge_expired(db, NOW, idle_before=NOW - IDLE, batch=batch),
        id="browser_sessions",
    ),
    pytest.param(
        "authorization_requests",
        lambda db, batch: pending_requests.purge_expired(db, NOW, batch=batch),
        id="authorization_requests",
    ),
    pytest.param(
        "authorization_codes",
        lambda db, batch: codes.purge_expired(db, NOW - 3600, batch=batch),
        id="authorization_codes",
    ),
    pytest.param(
        "device_codes", lambda db, batch: device_codes.purge_expired(db, NOW - 3600, batch=batch), id="device_codes"
    ),
    pytest.param(
        "refresh_tokens", lambda db, batch: refresh_tokens.purge_expired(db, NOW, batch=batch), id="refresh_tokens"
    ),
    pytest.param(
        "revoked_tokens", lambda db, batch: revocations.purge_revoked(db, NOW, batch=batch), id="revoked_tokens"
    ),
    pytest.param(
        "used_assertions",
        lambda db, batch: revocations.purge_used_assertions(db, NOW, batch=batch),
        id="used_assertions",
    ),
]


@pytest.mark.parametrize(("table", "purge"), PURGES)
async def test_purge_deletes_what_expired_and_keeps_the_rest(database, table, purge):
    """A purge deletes exactly its table's dead rows (at the boundary too), counts them, and keeps
    every live one; the other tables are untouched."""
    before = await _rows.keys(database)

    deleted = await purge(database, 100)

    after = await _rows.keys(database)
    assert deleted == len(SWEPT[table])
    assert after[table] == KEPT[table]
    assert {name: rows for name, rows in after.items() if name != table} == {
        name: rows for name, rows in before.items() if name != table
    }


@pytest.mark.parametrize(("table", "purge"), PURGES)
async def test_purge_deletes_at_most_one_batch(database, table, purge):
    """One call deletes at most `batch` rows; repeated calls finish the job and then find nothing."""
    counts = [await purge(database, 1) for _ in range(len(SWEPT[table]) + 1)]

    assert counts == [1] * len(SWEPT[table]) + [0]
    assert (await _rows.keys(database))[table] == KEPT[table]
