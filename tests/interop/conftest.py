"""Fixtures for the interop tests: the npm peers in tests/node, and one shared live server.

Tests whose verdict is about a peer's requests or checks, not about storage, share one
`bastion serve` process per xdist worker on its own SQLite file (each starts its own clients):
starting a server costs seconds, a test here costs milliseconds. The headline tests use the
per-test `live_server` on both databases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._live import LiveServer, start_server
from tests._services import need_node_package
from tests.conftest import make_settings, prepare


@pytest.fixture
def node_dir() -> Path:
    """tests/node, where `jose` is installed (skips, or fails under BASTION_REQUIRE_SERVICES=1)."""
    return need_node_package("jose")


@pytest.fixture(scope="session")
def interop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real `bastion serve` with default settings on a SQLite file of its own, shared by this worker."""
    directory = tmp_path_factory.mktemp("interop-server")
    settings = make_settings(f"sqlite+aiosqlite:///{directory / 'bastion.db'}", directory)
    asyncio.run(prepare(settings))
    server = start_server(settings, directory)
    try:
        yield server
    finally:
        server.stop()
