"""Fixtures for the authorization server: both databases, in-process app, real server process.

Every storage-touching test takes `db_url`, which runs it on SQLite and on PostgreSQL.
PostgreSQL gets one database per xdist worker, migrated once and truncated between tests.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.config import Secret, Settings, load_settings
from bastion.keys import lifecycle, startup
from bastion.server import admin, create_app, open_context
from bastion.server.context import ServerContext
from bastion.store import Database
from bastion.store.models import metadata
from tests import _services
from tests._live import LiveServer, start_server

ISSUER = "http://127.0.0.1:8000"
# The audience of tokens issued without `resource` by a server of make_settings (Settings.audience).
DEFAULT_AUDIENCE = ISSUER + "/api"
# Fixed test-only secrets (the tests' own data, not anybody's keys).
TEST_KEK = base64.urlsafe_b64encode(b"k" * 32).decode()
TEST_PEPPER = "test-pepper-not-a-secret-32-bytes-long"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _worker() -> str:
    # One database per worker of this run: concurrent runs on one machine never share (or drop)
    # each other's database.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:8]
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{run}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A migrated database for this xdist worker: postgresql+asyncpg://.../bastion_test_<worker>.

    Dropped at the end of the session, so local runs leave nothing behind.
    """
    base = _services.need_postgres()
    name = f"bastion_test_{_worker()}"

    async def setup() -> str:
        import asyncpg

        admin_conn = await asyncpg.connect(base)
        try:
            await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin_conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin_conn.close()
        url = base.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        database = Database(url, pool_size=1)
        await database.upgrade()
        await database.dispose()
        return url

    async def drop() -> None:
        import asyncpg

        admin_conn = await asyncpg.connect(base)
        try:
            await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin_conn.close()

    yield asyncio.run(setup())
    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind, not the worker's shared migrated one: for migration tests,
    which downgrade. Dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
        return
    import asyncpg

    base = _services.need_postgres()
    name = f"bastion_fresh_{_worker()}"
    admin_conn = await asyncpg.connect(base)
    try:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.execute(f'CREATE DATABASE "{name}"')
        yield base.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin_conn.close()


async def _truncate(url: str) -> None:
    database = Database(url, pool_size=1)
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    async with database.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    await database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL for this test: a fresh SQLite file, or the worker's truncated PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'bastion.db'}"
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(_truncate(url))
    return url


def make_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "data_dir": tmp_path / "data",
        "database_url": db_url,
        "key_encryption_key": TEST_KEK,
        "client_secret_pepper": TEST_PEPPER,
        "key_prepublication": 0,
        "client_cache_seconds": 0,
        "key_cache_seconds": 0,
    }
    values.update(overrides)
    return load_settings(environ={}, overrides=values)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


async def prepare(settings: Settings) -> None:
    """Migrate and give the server its signing keys (what an operator does before `serve`)."""
    database = Database(settings.resolved_database_url, pool_size=1)
    try:
        await database.upgrade()
        encryptor = startup.key_encryptor(settings)
        await lifecycle.ensure_active(database, encryptor, (settings.access_token_algorithm, "RS256"))
    finally:
        await database.dispose()


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[ServerContext]:
    await prepare(settings)
    context = await open_context(settings)
    yield context
    await context.close()


@pytest.fixture
async def http(settings: Settings, ctx: ServerContext) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process (ASGI), base URL = the issuer."""
    app = create_app(settings, ctx)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


class Registrar:
    """Registers clients through the same admin code the CLI uses."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def __call__(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("name", "test client")
        fields.setdefault("grants", ("client_credentials",))
        fields.setdefault("scope", ("read", "write"))
        return await admin.create_client(self.ctx.database, self.ctx.hasher, admin.NewClient(**fields))


@pytest.fixture
def register(ctx: ServerContext) -> Registrar:
    return Registrar(ctx)


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real `bastion serve` process on a free loopback port, on this test's database."""
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path)
    try:
        yield server
    finally:
        server.stop()


def random_secret() -> Secret:
    return Secret(secrets.token_urlsafe(32))
