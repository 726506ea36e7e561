"""A real `bastion edge serve` process for the edge's tests, asked as nginx and Caddy ask it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.cli._run import clean_env
from tests.guard._issuer import free_port


class EdgeProcess:
    """A running decision service and the subrequest a proxy sends it."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log
        self.http = httpx.Client(timeout=30)

    def decide(
        self,
        method: str,
        uri: str | bytes,
        *,
        token: str | None = None,
        headers: Mapping[str, str | bytes] | None = None,
        address: str = "203.0.113.7",
        also: Sequence[tuple[str, str]] = (),  # headers sent in addition, repeats kept
    ) -> httpx.Response:
        """POST-less subrequest: the original method and raw URI in X-Forwarded-*, plus headers."""
        sent: dict[str, str | bytes] = {
            "X-Forwarded-Method": method,
            "X-Forwarded-Uri": uri,
            "X-Forwarded-Host": "api.test",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": address,
        }
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        return self.http.get(f"{self.url}/decide", headers=[*sent.items(), *also])


@contextmanager
def running_edge(policy: Path, *, host: str = "127.0.0.1", reach: str = "127.0.0.1") -> Iterator[EdgeProcess]:
    """`bastion edge serve --policy POLICY --host HOST --port N` until the block ends, asked at `reach`."""
    port = free_port()
    log = policy.with_suffix(".log")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bastion", "edge", "serve", "--policy", str(policy),
             "--host", host, "--port", str(port)],
            env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
        )
    edge = EdgeProcess(f"http://{reach}:{port}", log)
    try:
        _wait(edge, process)
        yield edge
    finally:
        edge.http.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait(edge: EdgeProcess, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # generous: the machine is shared
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bastion edge serve exited {process.returncode}: {edge.log.read_text()}")
        try:
            edge.http.get(f"{edge.url}/decide", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"bastion edge serve did not start: {edge.log.read_text()}")
