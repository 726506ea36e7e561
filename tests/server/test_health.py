"""Health checks: `/health/live` answers while the process runs; `/health/ready` only while the
database is reachable and migrated and Redis (when configured) answers, naming what fails.

The last test stops a private PostgreSQL and kills a private Redis under a real `bastion serve`
(never the shared ones)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bastion.config import Settings
from bastion.server import create_app
from bastion.server.context import ServerContext
from bastion.server.endpoints.health import CACHE_SECONDS, Readiness
from bastion.store import Database
from tests._live import start_server
from tests._private_services import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests.conftest import make_settings, prepare

__all__ = ["private_postgres", "private_redis"]  # fixtures used below

pytestmark = pytest.mark.anyio

READY = {"status": "ok"}


@pytest.mark.parametrize("path", ["/health/live", "/health"])
async def test_live_answers_200(http: httpx.AsyncClient, path: str) -> None:
    """The liveness check (and its older name) answers 200 without consulting anything."""
    response = await http.get(path)

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response.headers["cache-control"] == "no-store"


async def test_ready_answers_200_on_a_migrated_database(http: httpx.AsyncClient) -> None:
    """A reachable database at the migrations' head (and no Redis configured): ready."""
    response = await http.get("/health/ready")

    assert (response.status_code, response.json()) == (200, READY)


@asynccontextmanager
async def _stamped(url: str, revision: str) -> AsyncIterator[None]:
    """The schema's recorded revision set back to `revision` for a while (a database not
    upgraded after a release), then restored."""
    database = Database(url, pool_size=1)
    try:
        async with database.engine.begin() as conn:
            head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        try:
            yield
        finally:
            async with database.engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": head})
    finally:
        await database.dispose()


async def test_ready_answers_503_on_a_database_not_at_head(http: httpx.AsyncClient, db_url: str) -> None:
    """A database behind the migrations' head is not ready; the answer names the database only."""
    async with _stamped(db_url, "0009"):
        response = await http.get("/health/ready")
        live = await http.get("/health/live")

    assert (response.status_code, response.json()) == (503, {"status": "unavailable", "failing": ["database"]})
    assert live.status_code == 200


async def test_a_flood_of_probes_shares_one_check_a_second(settings: Settings, ctx: ServerContext) -> None:
    """200 concurrent readiness probes cost the database and Redis one check, not 200: every
    probe within CACHE_SECONDS shares the answer of the one check that ran."""
    app = create_app(settings, ctx)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as http:
        first = await http.get("/health/ready")
        shared: Readiness = app.state.readiness
        before = shared.checks
        flood = await asyncio.gather(*(http.get("/health/ready") for _ in range(200)))

    assert first.status_code == 200
    assert {r.status_code for r in flood} == {200}
    assert shared.checks - before <= 1


async def test_a_refusal_is_checked_again_after_the_cache_second(http: httpx.AsyncClient, db_url: str) -> None:
    """A cached answer lives CACHE_SECONDS only: a database falling behind head is seen a
    second later, and coming back the second after."""
    ready = await http.get("/health/ready")
    async with _stamped(db_url, "0009"):
        await asyncio.sleep(CACHE_SECONDS + 0.1)
        behind = await http.get("/health/ready")
    await asyncio.sleep(CACHE_SECONDS + 0.1)
    back = await http.get("/health/ready")

    assert [r.status_code for r in (ready, behind, back)] == [200, 503, 200]


async def _until(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_ready_follows_postgres_and_redis_going_down_and_coming_back(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    """A real server on a private PostgreSQL and Redis: ready answers 503 naming the database while
    PostgreSQL is stopped and Redis while it is killed, live stays 200, and ready is 200 again
    within 5 s of each coming back, without a restart."""
    settings = make_settings(private_postgres.async_url, tmp_path, redis_url=private_redis.url)
    await prepare(settings)
    server = await asyncio.to_thread(start_server, settings, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

            async def ready() -> bool:
                return (await http.get("/health/ready")).status_code == 200

            async def answer_once_cache_expired(status: int) -> httpx.Response:
                # Readiness is checked at most once a second (CACHE_SECONDS): wait for a fresh answer.
                deadline = time.monotonic() + 3 * CACHE_SECONDS
                response = await http.get("/health/ready")
                while response.status_code != status and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    response = await http.get("/health/ready")
                return response

            before = await http.get("/health/ready")
            await asyncio.to_thread(private_postgres.stop)
            no_database = await answer_once_cache_expired(503)
            live_without_database = await http.get("/health/live")
            await asyncio.to_thread(private_postgres.start)
            database_back = await _until(ready, 5)
            private_redis.kill()
            no_redis = await answer_once_cache_expired(503)
            await asyncio.to_thread(private_redis.start)
            redis_back = await _until(ready, 5)
    finally:
        server.stop()

    assert (before.status_code, before.json()) == (200, READY)
    assert (no_database.status_code, no_database.json()) == (503, {"status": "unavailable", "failing": ["database"]})
    assert live_without_database.status_code == 200
    assert database_back
    assert (no_redis.status_code, no_redis.json()) == (503, {"status": "unavailable", "failing": ["redis"]})
    assert redis_back
