"""Expired rows are swept: by every live server process on its own schedule, and on demand by
`bastion db purge` (counts per table), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.server.sweeper import purge_expired
from bastion.store import Database, clients, pending_requests, transaction
from tests._live import free_port, server_env, start_server
from tests.cli._run import bastion
from tests.conftest import prepare
from tests.store import _rows
from tests.store._rows import KEPT, SWEPT

pytestmark = pytest.mark.anyio

IDLE = 1800  # the default session_idle_lifetime


async def _seeded(settings: Settings) -> int:
    """Migrate, then store the expired and live rows of every expiring table around now."""
    await prepare(settings)
    database = Database(settings.resolved_database_url, pool_size=1)
    try:
        await clients.insert(database, _rows.client("c1"))
        now = int(time.time())
        await _rows.store_expiring(database, now, IDLE)
        return now
    finally:
        await database.dispose()


async def _keys(settings: Settings) -> dict[str, set[str]]:
    database = Database(settings.resolved_database_url, pool_size=1)
    try:
        return await _rows.keys(database)
    finally:
        await database.dispose()


@pytest.mark.server
async def test_a_live_server_sweeps_every_expired_row_and_keeps_live_ones(settings: Settings, tmp_path: Path):
    """A server with purge_interval=1 deletes, on its own, the dead rows of every expiring table
    and keeps every live one."""
    await _seeded(settings)
    server = start_server(settings, tmp_path, BASTION_PURGE_INTERVAL="1")
    try:
        found = await _keys(settings)
        for _ in range(120):  # a sweep each 0.5-1.5 s; a minute is plenty on a loaded machine
            if found == KEPT:
                break
            await asyncio.sleep(0.5)
            found = await _keys(settings)
    finally:
        server.stop()

    assert found == KEPT
    assert "expired_rows_purged" in server.log.read_text()


@pytest.mark.server
@pytest.mark.parametrize("as_json", [pytest.param(False, id="text"), pytest.param(True, id="json")])
async def test_bastion_db_purge_deletes_expired_rows_and_prints_counts_per_table(
    settings: Settings, tmp_path: Path, as_json: bool
):
    """`bastion db purge` deletes every expired row now and prints how many per table; a second
    run finds none."""
    await _seeded(settings)
    env = server_env(settings, free_port())
    flags = ("--json",) if as_json else ()

    first = bastion("db", "purge", "--data-dir", str(tmp_path / "data"), *flags, **env)
    again = bastion("db", "purge", "--data-dir", str(tmp_path / "data"), *flags, **env)

    assert first.returncode == 0, first.stderr
    expected = {table: len(rows) for table, rows in SWEPT.items()}
    if as_json:
        assert json.loads(first.stdout) == expected
        assert json.loads(again.stdout) == dict.fromkeys(expected, 0)
    else:
        assert first.stdout.splitlines() == [f"{table}: {count}" for table, count in expected.items()]
        assert again.stdout.splitlines() == [f"{table}: 0" for table in expected]
    assert await _keys(settings) == KEPT


def _sweep(database: Database, now: int) -> Awaitable[dict[str, int]]:
    return purge_expired(database, now=now, session_idle=IDLE, batch=25)


async def test_workers_sweeping_at_once_share_the_work(db_url: str):
    """Four sweeps at once (four workers) all succeed and delete each expired row exactly once; a
    later sweep finds nothing left."""
    now = int(time.time())
    async for database in _rows.database_with(db_url, pool_size=4):
        async with transaction(database) as tx:
            for i in range(600):
                await pending_requests.insert(tx, _rows.pending_request(f"r{i}", "h", expires_at=now - 1))

        sweeps = await asyncio.gather(*(_sweep(database, now) for _ in range(4)))
        finally_left = await _sweep(database, now)

        assert sum(sweep["authorization_requests"] for sweep in sweeps) + finally_left["authorization_requests"] == 600
        assert (await _rows.keys(database))["authorization_requests"] == set()
