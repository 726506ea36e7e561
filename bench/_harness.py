"""What the benchmarks share: the npm peers, a real `bastion serve` process, and autocannon.

Benchmarks measure real processes on loopback, driven by one load generator (npm `autocannon`),
so a figure for Bastion and a figure for a peer are taken the same way. Nothing here is part of
the test run; pytest only collects `tests/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
NODE_DIR = BENCH / "node"
AUTOCANNON = NODE_DIR / "node_modules" / ".bin" / "autocannon"
_NPM_STAMP = NODE_DIR / "node_modules" / ".bench-lock-sha256"


def ensure_node_packages() -> None:
    """Install bench/node's locked npm packages (`npm ci`) unless the lock is already installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        sys.exit("bench: node and npm are needed (Debian: apt-get install nodejs npm)")
    wanted = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    if _NPM_STAMP.exists() and _NPM_STAMP.read_text() == wanted:
        return
    print("bench: installing bench/node packages (npm ci)", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True)
    _NPM_STAMP.write_text(wanted)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Poll `url` until it answers (any status), or fail with the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1)
        except httpx.HTTPError:
            time.sleep(0.1)
        else:
            return
    raise RuntimeError(f"{process.args!r} did not answer on {url}:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def bastion_env(**settings: str) -> dict[str, str]:
    """The environment without the caller's BASTION_* settings, plus `settings` (BASTION_ prefixed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({f"BASTION_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class Bastion:
    """One `bastion serve` process (one worker) in development mode on a temporary data directory."""

    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    env: dict[str, str]
    log: Path

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "bastion", *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"bastion {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def create_client(self, *args: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.cli("clients", "create", *args, "--json"))
        return data


def start_bastion(workdir: Path, *, port: int | None = None, **settings: str) -> Bastion:
    """Start `bastion serve --workers 1` on loopback with a fresh data directory under `workdir`."""
    port = port or free_port()
    data_dir = workdir / "bastion-data"
    log = workdir / "bastion.log"
    env = bastion_env(**settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "bastion", "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url + "/health", process, log)
    except BaseException:
        stop(process)
        raise
    return Bastion(url, process, data_dir, env, log)


def start_node(
    script: str, workdir: Path, name: str, ready_url: str, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Run `node bench/node/SCRIPT` (production mode) and wait until `ready_url` answers."""
    log = workdir / f"{name}.log"
    process = subprocess.Popen(
        ["node", script],
        cwd=NODE_DIR,
        env={**os.environ, "NODE_ENV": "production", **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_ready(ready_url, process, log)
    except BaseException:
        stop(process)
        raise
    return process


@dataclass(frozen=True)
class LoadResult:
    """One autocannon run: 2xx responses per second, and everything that was not a 2xx."""

    ok: int
    non_2xx: int
    errors: int
    timeouts: int
    seconds: float
    latency_p50: float
    latency_p99: float

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def autocannon(
    url: str,
    *,
    body: str,
    headers: Mapping[str, str],
    connections: int,
    duration: float,
    method: str = "POST",
) -> LoadResult:
    """Drive `url` with autocannon for `duration` seconds over `connections` keep-alive connections."""
    argv = [str(AUTOCANNON), "--json", "--no-progress", "-c", str(connections), "-d", str(duration), "-m", method]
    for name, value in headers.items():
        argv += ["-H", f"{name}={value}"]
    if body:
        argv += ["-b", body]
    result = subprocess.run([*argv, url], capture_output=True, text=True, check=True, cwd=NODE_DIR)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return LoadResult(
        ok=int(data["2xx"]),
        non_2xx=int(data["non2xx"]),
        errors=int(data["errors"]),
        timeouts=int(data["timeouts"]),
        seconds=float(data["duration"]),
        latency_p50=float(data["latency"]["p50"]),
        latency_p99=float(data["latency"]["p99"]),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far (Linux /proc), 0.0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # proc(5): utime and stime are fields 14 and 15, counted from the state field (3) here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
