"""The server's audit trail (`store.audit`): batches chain after the last row, under the writers'
lock, so concurrent appenders make one chain; `page` reads it in order after an id. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest

from bastion.guard.audit import verify_entries
from bastion.server.audit_trail import entry_body, seal_row
from bastion.store import Database
from bastion.store import audit as audit_store

pytestmark = pytest.mark.anyio


def _body(n: int) -> dict:
    return entry_body(
        1_700_000_000.0 + n, {"event": "token_issued", "client_id": f"c{n}", "jti": f"j{n}"}, "https://as"
    )


async def _migrated(db_url: str, pool_size: int = 1) -> Database:
    database = Database(db_url, pool_size=pool_size)
    await database.upgrade()
    return database


async def _entries(database: Database) -> list[dict]:
    return [json.loads(row.entry) for row in await audit_store.page(database, 0, 10_000)]


async def test_batches_continue_the_chain(db_url):
    """Two batches make one chain numbered 1..n that the guard's verifier accepts."""
    database = await _migrated(db_url, 2)
    try:
        first = await audit_store.append(database, [_body(1), _body(2)], seal_row)
        second = await audit_store.append(database, [_body(3)], seal_row)
        entries = await _entries(database)
    finally:
        await database.dispose()

    assert [row.seq for row in (*first, *second)] == [1, 2, 3]
    assert json.loads(second[0].entry)["prev"] == first[-1].hash
    assert verify_entries(entries).ok
    assert [e["client_id"] for e in entries] == ["c1", "c2", "c3"]


async def test_concurrent_appenders_make_one_chain(db_url):
    """Appenders on separate connections at once still leave one valid chain with every entry."""
    databases = [await _migrated(db_url, 2) for _ in range(3)]
    try:
        await asyncio.gather(
            *(audit_store.append(db, [_body(10 * i + k) for k in range(5)], seal_row) for i, db in enumerate(databases))
        )
        entries = await _entries(databases[0])
    finally:
        for db in databases:
            await db.dispose()

    assert verify_entries(entries).count == 15
    assert sorted(e["client_id"] for e in entries) == sorted(f"c{10 * i + k}" for i in range(3) for k in range(5))


async def test_page_reads_after_an_id(db_url):
    """`page(after_id, limit)` returns at most `limit` rows numbered after `after_id`, in order."""
    database = await _migrated(db_url)
    try:
        await audit_store.append(database, [_body(n) for n in range(1, 6)], seal_row)
        middle = await audit_store.page(database, 2, 2)
        end = await audit_store.page(database, 5)
    finally:
        await database.dispose()

    assert [row.seq for row in middle] == [3, 4]
    assert (middle[0].actor, middle[0].action, middle[0].object, middle[0].outcome) == (
        "client:c3",
        "token_issued",
        "jti:j3",
        "success",
    )
    assert end == []


async def test_append_of_nothing_writes_nothing(db_url):
    """An empty batch is not a transaction and leaves the trail empty."""
    database = await _migrated(db_url)
    try:
        assert await audit_store.append(database, [], seal_row) == []
        assert await audit_store.page(database) == []
    finally:
        await database.dispose()
