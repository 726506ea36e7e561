"""Private PostgreSQL and Redis servers for tests that stop them (never the shared ones).

Each lives in its own temporary directory on a free loopback port and is started, stopped and
started again by the test: PostgreSQL as the `postgres` user (`runuser -u postgres --`, the
binaries in BASTION_TEST_PG_BIN, default Debian's /usr/lib/postgresql/15/bin), Redis as a plain
`redis-server` child without persistence.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._services import missing

PG_BIN = Path(os.environ.get("BASTION_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int, probe: bytes, expected: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2) as sock:
            sock.sendall(probe)
            return sock.recv(16).startswith(expected)
    except OSError:
        return False


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary directory), one database `test`.

    `url` (plain `postgresql://`) stays the same across `stop()` and `start()`.
    """

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl", "createdb"):
            if not (PG_BIN / tool).exists():
                missing(f"PostgreSQL's {tool}", f"install postgresql-15 or set BASTION_TEST_PG_BIN (tried {PG_BIN})")
        if shutil.which("runuser") is None or os.geteuid() != 0:
            missing("runuser as root", f"private PostgreSQL clusters run as the {PG_USER!r} user")
        self.port = free_port()
        # Not under pytest's tmp_path: that directory is private to root, and the server runs
        # as another user.
        self.directory = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
        shutil.chown(self.directory, PG_USER, PG_USER)
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/test"

    @property
    def async_url(self) -> str:
        """The URL with the driver the server uses."""
        return self.url.replace("postgresql://", "postgresql+asyncpg://")

    def _as_postgres(self, *command: str, timeout: float = 120) -> None:
        result = subprocess.run(
            ["runuser", "-u", PG_USER, "--", *command],
            capture_output=True, text=True, check=False, timeout=timeout, cwd=self.directory,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections (creating `test` the first time)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                          "-o", options, "start")
        if not (self.directory / "created").exists():
            self._as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "test")
            (self.directory / "created").touch()

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m MODE`: fast ends every session at once (an outage, as an operator makes one)."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def cleanup(self) -> None:
        if self.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    """One redis-server process on a fixed free port, without persistence: killed, it forgets."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server", "install Debian's redis-server package")
        self.binary = str(binary)
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="bastion-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _answers(self.port, b"PING\r\n", b"+PONG"):
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(Path(self.directory), ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL, started; stopped and removed afterwards."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private Redis, started; killed and removed afterwards."""
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
