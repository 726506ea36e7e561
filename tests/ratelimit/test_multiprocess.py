"""Two uvicorn processes sharing one Redis never admit more than the limit between them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests._services import ROOT, need_redis
from tests.ratelimit._app import LIMIT, ROUTES
from tests.ratelimit._redis_server import free_port

pytestmark = [pytest.mark.redis, pytest.mark.server]


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.ratelimit._app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


@pytest.fixture
def two_servers() -> Iterator[list[int]]:
    redis_url = need_redis()
    prefix = f"bastion-test:{uuid.uuid4().hex}:"
    env = {**os.environ, "BASTION_TEST_RL_REDIS": redis_url, "BASTION_TEST_RL_PREFIX": prefix}
    ports = [free_port(), free_port()]
    processes = [start_server(port, env) for port in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_ready(port, process)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
            if process.stderr is not None:
                process.stderr.close()

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_two_processes_sharing_redis_admit_at_most_the_limit(two_servers: list[int]) -> None:
    """Driven concurrently across both processes, each route admits exactly its limit in total."""

    async def drive() -> dict[str, list[tuple[int, str]]]:
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:
            async def one(path: str, i: int) -> tuple[int, str]:
                port = two_servers[i % 2]
                response = await http.get(f"http://127.0.0.1:{port}{path}")
                return response.status_code, response.text

            results = await asyncio.gather(
                *(one(path, i) for path in ROUTES for i in range(3 * LIMIT))
            )
        per_route = 3 * LIMIT
        return {path: results[n * per_route:(n + 1) * per_route] for n, path in enumerate(ROUTES)}

    results = asyncio.run(drive())
    admitted = {path: sum(status == 200 for status, _ in rows) for path, rows in results.items()}
    refused = {path: sum(status == 429 for status, _ in rows) for path, rows in results.items()}
    serving_pids = {text for rows in results.values() for status, text in rows if status == 200}
    assert admitted == dict.fromkeys(ROUTES, LIMIT)
    assert refused == dict.fromkeys(ROUTES, 2 * LIMIT)
    assert len(serving_pids) == 2
