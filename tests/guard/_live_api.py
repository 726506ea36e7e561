"""Starting `tests/guard/_serve.py` (a guarded API in its own uvicorn process) for a test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.guard._issuer import AUDIENCE, TestIssuer, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveApi:
    """A running guarded API: its URL, the issuer it trusts, and its API key file."""

    url: str
    issuer: TestIssuer
    apikeys: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


def start_api(shape: str, issuer: TestIssuer, tmp: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start the process (not waiting for it); `env` adds GUARD_* variables."""
    port = free_port()
    variables = os.environ | {
        "GUARD_SHAPE": shape,
        "GUARD_PORT": str(port),
        "GUARD_DISCOVERY_URL": f"{issuer.issuer}/.well-known/openid-configuration",
        "GUARD_AUDIENCE": AUDIENCE,
        "GUARD_APIKEYS": str(tmp / "apikeys.json"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **env,
    }
    with (tmp / f"api-{port}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "guard" / "_serve.py"), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=variables,
            cwd=ROOT,
        )


@contextmanager
def running_api(shape: str, issuer: TestIssuer, tmp: Path, **env: str) -> Iterator[LiveApi]:
    """The guarded API in `shape` (`asgi` or `fastapi`), answering, until the block ends."""
    process = start_api(shape, issuer, tmp, **env)
    port = process.args[-1]  # type: ignore[index]
    url = f"http://127.0.0.1:{port}"
    log = tmp / f"api-{port}.log"
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core CI machine starts Python slowly
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"guarded API exited: {log.read_text()}")
            try:
                httpx.get(f"{url}/notes", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("guarded API did not start") from None
                time.sleep(0.1)
        yield LiveApi(url, issuer, tmp / "apikeys.json", log, process)
    finally:
        process.terminate()
        process.wait(10)
