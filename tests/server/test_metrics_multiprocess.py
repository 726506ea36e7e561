"""/metrics of `bastion serve --workers 2` on PostgreSQL and Redis: the workers share a private
`PROMETHEUS_MULTIPROC_DIR`, any worker scraped answers the sums over both, a worker that dies
stops counting in the live gauges, and the directory is gone when the server stops."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import _services
from tests._live import LiveServer, start_server
from tests.conftest import _truncate, make_settings, prepare
from tests.server._metrics import parse, value

pytestmark = [pytest.mark.server, pytest.mark.postgres]

GRANTS = 60


@pytest.fixture
def two_workers(postgres_database: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(_truncate(postgres_database))
    settings = make_settings(postgres_database, tmp_path, redis_url=_services.need_redis())
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, args=["--workers", "2"])
    try:
        yield server
    finally:
        server.stop()


def _workers(server: LiveServer) -> list[int]:
    """The worker processes under `bastion serve` (uvicorn's supervisor is the process itself;
    multiprocessing's resource tracker is a child too, not a worker)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


async def _grants(server: LiveServer, client: dict[str, Any]) -> list[int]:
    """GRANTS client_credentials grants, 12 connections at a time (so both workers accept)."""
    auth = (client["client_id"], client["client_secret"])
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
        gate = asyncio.Semaphore(12)

        async def one() -> int:
            async with gate:
                return (await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)).status_code

        return list(await asyncio.gather(*(one() for _ in range(GRANTS))))


def test_counts_are_summed_over_both_workers(two_workers):
    """60 grants spread over two workers: every scrape, whichever worker answers it, counts 60
    grants and 60 answered /token requests, and each worker has written its own counts."""
    server = two_workers
    client = server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    statuses = asyncio.run(_grants(server, client))
    directory = Path(_environ(_workers(server)[0])["PROMETHEUS_MULTIPROC_DIR"])
    scrapes = []
    for _ in range(8):  # a new connection each: either worker may answer
        text = httpx.get(server.url + "/metrics", timeout=10, headers={"connection": "close"}).text
        samples = parse(text)
        scrapes.append((
            value(samples, "bastion_grants_total", grant_type="client_credentials", outcome="issued"),
            value(samples, "bastion_http_requests_total", route="/token", status="200"),
        ))  # fmt: skip
    writers = {int(file.stem.rsplit("_", 1)[1]) for file in directory.glob("counter_*.db")}

    assert statuses == [200] * GRANTS
    assert scrapes == [(GRANTS, GRANTS)] * 8
    assert set(_workers(server)) <= writers
    assert len(_workers(server)) == 2


def test_a_dead_workers_gauges_are_dropped_and_the_directory_removed(two_workers):
    """A worker killed outright stops counting in the live gauges (the pool's) at the next
    scrape, the server replaces it, and stopping the server removes the metrics directory."""
    server = two_workers
    first = _workers(server)
    directory = Path(_environ(first[0])["PROMETHEUS_MULTIPROC_DIR"])
    deadline = time.monotonic() + 30
    while len(list(directory.glob("gauge_livesum_*.db"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # each worker publishes its gauges within PUBLISH_EVERY seconds
    before = {int(file.stem.rsplit("_", 1)[1]) for file in directory.glob("gauge_livesum_*.db")}
    os.kill(first[0], signal.SIGKILL)
    while time.monotonic() < deadline and (first[0] in _workers(server) or len(_workers(server)) < 2):
        time.sleep(0.2)
    response = httpx.get(server.url + "/metrics", timeout=10)
    livesum = {int(file.stem.rsplit("_", 1)[1]) for file in directory.glob("gauge_livesum_*.db")}
    server.stop()

    assert response.status_code == 200
    assert first[0] in before
    assert first[0] not in livesum
    assert not directory.exists()
