"""The server's audit-trail writer (`server.audit_trail`) on SQLite and PostgreSQL: events of
`events.audit` are queued and written as chained entries; while the database is away they stay
queued in order; past the queue's bound they are counted and the trail records how many; routine
successes (`client_authenticated`) never reach it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bastion import events
from bastion.guard.audit import verify_entries
from bastion.server.audit_trail import AuditTrail, outcome
from bastion.store import Database
from bastion.store import audit as audit_store

pytestmark = pytest.mark.anyio
UNREACHABLE = "postgresql+asyncpg://bastion@127.0.0.1:1/none"


async def _entries(database: Database) -> list[dict]:
    return [json.loads(row.entry) for row in await audit_store.page(database)]


async def test_events_are_queued_and_written_as_one_chain(db_url):
    """What `events.audit` writes while the trail is attached is written, chained, by `flush`."""
    database = Database(db_url, pool_size=1)
    await database.upgrade()
    trail = AuditTrail(database, "https://as.example")
    trail.attach()
    try:
        events.audit("login_failed", sub="s-1")
        events.audit("client_authenticated", client_id="c-1", method="client_secret_basic")
        events.audit("token_issued", client_id="c-1", jti="j-1", scope="read")
    finally:
        trail.detach()
    events.audit("token_issued", client_id="c-2", jti="j-2")  # after detach: stderr only
    try:
        assert await trail.flush() == 2
        entries = await _entries(database)
    finally:
        await database.dispose()

    assert verify_entries(entries).ok
    assert [(e["action"], e["actor"], e["outcome"], e["object"]) for e in entries] == [
        ("login_failed", "user:s-1", "failure", None),
        ("token_issued", "client:c-1", "success", "jti:j-1"),
    ]
    assert entries[1]["details"] == {"jti": "j-1", "scope": "read"}
    assert entries[1]["issuer"] == "https://as.example"


async def test_an_administrators_action_names_the_administrator_as_actor(db_url):
    """An admin action's `sub` is the user acted on: the entry's actor is who acted (the admin's
    token subject, or the command line's account), never its target."""
    database = Database(db_url)
    await database.upgrade()
    trail = AuditTrail(database, "https://as.example")
    trail.attach()
    try:
        events.audit("user_deleted", sub="target", actor_sub="admin-1", actor_client_id="console", via="api")
        events.audit("user_deleted", sub="target", actor_sub=None, actor_client_id=None, via="cli:root")
    finally:
        trail.detach()
    try:
        assert await trail.flush() == 2
        entries = await _entries(database)
    finally:
        await database.dispose()

    assert [(e["actor"], e["sub"]) for e in entries] == [("user:admin-1", "target"), ("cli:root", "target")]


async def test_an_outage_keeps_the_queue_and_an_overflow_is_recorded(db_url):
    """While the database is unreachable nothing is lost from the queue; past the bound new
    events are counted, and the next write records `audit_events_dropped` with the count."""
    away = Database(UNREACHABLE, timeout=1)
    trail = AuditTrail(away, "https://as.example", capacity=2)
    for n in range(3):
        trail.submit({"event": "token_issued", "client_id": f"c-{n}", "audit": True, "level": "info"})
    try:
        assert await trail.flush() == 0
    finally:
        await away.dispose()

    database = Database(db_url, pool_size=1)
    await database.upgrade()
    trail.database = database
    try:
        assert await trail.flush() == 3
        entries = await _entries(database)
    finally:
        await database.dispose()

    assert [(e["action"], e["client_id"]) for e in entries] == [
        ("token_issued", "c-0"),
        ("token_issued", "c-1"),
        ("audit_events_dropped", None),
    ]
    assert entries[2]["details"] == {"count": 1, "capacity": 2}
    assert entries[2]["outcome"] == "failure"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param("login_failed", "failure", id="failed"),
        pytest.param("login_throttled", "failure", id="throttled"),
        pytest.param("authorization_request_refused", "failure", id="refused"),
        pytest.param("authorization_code_replayed", "failure", id="replayed"),
        pytest.param("consent_denied", "failure", id="denied"),
        pytest.param("token_issued", "success", id="issued"),
        pytest.param("token_revoked", "success", id="revoked"),
    ],
)
def test_outcome_of_an_event(event, expected):
    """An event that records a refused or failed attempt is a `failure`."""
    assert outcome(event) == expected


@contextlib.asynccontextmanager
async def _writers_lock_held(db_url: str) -> AsyncIterator[None]:
    """Hold the trail writers' lock from another connection: PostgreSQL's advisory lock, SQLite's
    write lock (`BEGIN IMMEDIATE`)."""
    if db_url.startswith("sqlite"):
        holder = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", audit_store.ADVISORY_LOCK_KEY)
        yield
    finally:
        await conn.close()


async def test_closing_while_a_write_is_under_way_loses_nothing(db_url):
    """A shutdown that comes while the writer's batch is waiting on the database waits for that
    write and then writes what was queued after it (the batch was off the queue: cancelling the
    writer there lost it, as a server stopped right after a refused request showed)."""
    database = Database(db_url, pool_size=2)
    await database.upgrade()
    trail = AuditTrail(database, "https://as.example", interval=0.01)
    trail.attach()
    try:
        async with _writers_lock_held(db_url):
            events.audit("client_authentication_failed", client_id="c-1", request_id="r-1")
            writer = asyncio.create_task(trail.run())
            await asyncio.sleep(0.3)  # the writer took the batch and waits for the lock
            events.audit("token_revoked", client_id="c-1", jti="j-1", request_id="r-2")
            closing = asyncio.create_task(trail.close())
            await asyncio.sleep(0.1)
            assert not closing.done()
        await asyncio.wait_for(closing, 15)
        await asyncio.wait_for(writer, 15)
        entries = await _entries(database)
    finally:
        trail.detach()
        await database.dispose()

    assert [(e["action"], e["request_id"]) for e in entries] == [
        ("client_authentication_failed", "r-1"),
        ("token_revoked", "r-2"),
    ]
    assert verify_entries(entries).ok
