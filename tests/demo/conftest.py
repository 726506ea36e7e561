"""Fixtures for the demo: a test issuer, and the demo API as a real uvicorn process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bastion.guard.apikeys import ApiKeyManager, JsonFileApiKeyStore
from tests.guard._issuer import TestIssuer, free_port, running_issuer

DEMO_AUDIENCE = "https://demo.test"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class LiveDemo:
    """A running demo process and what the tests need to talk to it."""

    url: str
    issuer: TestIssuer
    api_key: str
    audit_path: Path

    def token(self, sub: str, scope: str = "notes:read notes:write", **claims: object) -> str:
        return self.issuer.mint(sub=sub, scope=scope, aud=DEMO_AUDIENCE, **claims)


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    """The demo API in its own uvicorn process, trusting a test issuer served on loopback."""
    tmp = tmp_path_factory.mktemp("demo")
    key, _ = ApiKeyManager(JsonFileApiKeyStore(tmp / "apikeys.json")).create("reporting", ["notes:stats"])
    with running_issuer() as issuer:
        port = free_port()
        env = os.environ | {
            "DEMO_DISCOVERY_URL": f"{issuer.issuer}/.well-known/openid-configuration",
            "DEMO_AUDIENCE": DEMO_AUDIENCE,
            "DEMO_APIKEYS": str(tmp / "apikeys.json"),
            "DEMO_AUDIT": str(tmp / "audit.jsonl"),
        }
        log = (tmp / "server.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "demo" / "_serve.py"), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        log.close()
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120  # a loaded 2-core CI machine starts slowly
            while True:
                if process.poll() is not None:
                    pytest.fail(f"demo exited: {(tmp / 'server.log').read_text()}")
                try:
                    httpx.get(f"{url}/health", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        pytest.fail("demo did not start")
                    time.sleep(0.1)
            yield LiveDemo(url, issuer, key, tmp / "audit.jsonl")
        finally:
            process.terminate()
            process.wait(10)
