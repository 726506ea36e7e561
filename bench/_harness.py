"""What the benchmarks share: the npm peers, a real `bastion serve` process, and autocannon.

Benchmarks measure real processes on loopback, driven by one load generator (npm `autocannon`),
so a figure for Bastion and a figure for a peer are taken the same way. Nothing here is part of
the test run; pytest only collects `tests/`.

`start_deployment` starts Bastion as users deploy it: `development` (SQLite in a data directory,
no Redis) or `production` (PostgreSQL + Redis, secrets in the environment, `bastion db upgrade`
and `bastion keys rotate` run first, as the README's production steps say). By default the
PostgreSQL cluster and the redis-server are private to the bench (started here, stopped at the
end), so that the CPU of every process that serves a grant can be counted: `Deployment.cpu()`
sums utime + stime (and the reaped children's cutime + cstime) over the whole process tree of
the Bastion supervisor, the postmaster and redis-server (`tree_cpu_seconds`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
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


def start_bastion(
    workdir: Path, *, port: int | None = None, workers: int = 1, data_dir: Path | None = None, **settings: str
) -> Bastion:
    """Start `bastion serve --workers N` on loopback with a fresh data directory under `workdir`."""
    port = port or free_port()
    data_dir = data_dir or workdir / "bastion-data"
    log = workdir / "bastion.log"
    env = bastion_env(**settings)
    # The child keeps its own copy of the log's descriptor; ours is closed at once.
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "bastion", "serve", "--port", str(port)),
                *("--data-dir", str(data_dir), "--workers", str(workers)),
            ],
            env=env,
            stdout=output,
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
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["node", script],
            cwd=NODE_DIR,
            env={**os.environ, "NODE_ENV": "production", **env},
            stdout=output,
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
    amount: int | None = None,
) -> LoadResult:
    """Drive `url` with autocannon for `duration` seconds over `connections` keep-alive connections
    (or for exactly `amount` requests when given: equal counts for every server)."""
    # With an amount, autocannon ends at its next sample tick: 20 ms ticks, not the default 1 s,
    # keep that from stretching the measured duration.
    run = ["-a", str(amount), "-L", "20"] if amount is not None else ["-d", str(duration)]
    argv = [str(AUTOCANNON), "--json", "--no-progress", "-c", str(connections), *run, "-m", method]
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


# Whole process trees, and the deployed configuration.


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(root: int) -> list[int]:
    """`root` and every live descendant (Linux /proc), scanned now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            # proc(5): ppid is field 4, the second after the command name.
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a whole process tree: each live process's utime + stime (all its threads)
    plus cutime + cstime (the children it has reaped, e.g. a PostgreSQL backend that exited)."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # proc(5): utime, stime, cutime, cstime are fields 14-17, counted from the state (3) here.
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_bytes(root: int) -> int:
    """Resident set size summed over a process tree (VmRSS of each live process)."""
    total = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the bench's own (initdb in a temporary directory, run as the
    `postgres` user), on a free loopback port, with its configuration left at initdb's defaults."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def postmaster_pid(self) -> int:
        return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    @classmethod
    def start(cls) -> PrivatePostgres:
        if not (PG_BIN / "initdb").exists():
            sys.exit(f"bench: PostgreSQL 15 binaries are needed in {PG_BIN} (Debian: postgresql-15)")
        directory = Path(tempfile.mkdtemp(prefix="bastion-bench-pg-"))
        shutil.chown(directory, "postgres", "postgres")
        server = cls(directory, free_port())
        data = directory / "data"
        server._as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1"
        log = str(directory / "log")
        server._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start")
        return server

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server of the bench's own on a free loopback port, default settings, its
    snapshots written into a temporary directory."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> PrivateRedis:
        server = shutil.which("redis-server")
        if server is None:
            sys.exit("bench: redis-server is needed (Debian: redis-server)")
        directory = Path(tempfile.mkdtemp(prefix="bastion-bench-redis-"))
        port = free_port()
        argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--daemonize", "no"]
        with (directory / "log").open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return cls(directory, port, process)
            time.sleep(0.05)
        stop(process)
        raise RuntimeError(f"redis-server did not listen on {port}")

    def stop(self) -> None:
        stop(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)


SHARED_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SHARED_REDIS = "redis://127.0.0.1:6379/0"


def _fresh_shared_database() -> tuple[str, str]:
    """A new database on the machine's shared PostgreSQL (never dropped by anything but us)."""
    import asyncio

    import asyncpg

    name = "bastion_bench_" + secrets.token_hex(4)

    async def create() -> None:
        conn = await asyncpg.connect(SHARED_POSTGRES)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return SHARED_POSTGRES.rsplit("/", 1)[0] + "/" + name, name


def _drop_shared_database(name: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(SHARED_POSTGRES)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    with contextlib.suppress(Exception):
        asyncio.run(drop())


@dataclass
class Deployment:
    """A running Bastion in the deployed configuration, and the processes that serve its grants."""

    config: str
    workers: int
    bastion: Bastion
    postgres: PrivatePostgres | None = None
    redis: PrivateRedis | None = None
    shared_services: bool = False

    @property
    def url(self) -> str:
        return self.bastion.url

    def serving_roots(self) -> dict[str, int]:
        """The root process of each serving process tree whose CPU is counted."""
        roots = {"bastion": self.bastion.process.pid}
        if self.postgres is not None:
            roots["postgres"] = self.postgres.postmaster_pid
        if self.redis is not None:
            roots["redis"] = self.redis.process.pid
        return roots

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each serving process tree (Bastion supervisor and workers,
        PostgreSQL postmaster and backends, redis-server with its threads), and their `total`."""
        spent = {name: tree_cpu_seconds(pid) for name, pid in self.serving_roots().items()}
        spent["total"] = sum(spent.values())
        return spent

    def bastion_rss(self) -> int:
        return tree_rss_bytes(self.bastion.process.pid)

    def counted(self) -> str:
        """What `cpu()['total']` covers, in words, for the bench's output."""
        if self.config == "development":
            return "Bastion's processes (SQLite runs inside them)"
        if self.shared_services:
            return "Bastion's processes only: the machine's shared PostgreSQL and Redis are NOT counted"
        return "Bastion's processes + the private PostgreSQL (postmaster and backends) + the private redis-server"

    def stop(self) -> None:
        stop(self.bastion.process)
        if self.postgres is not None:
            self.postgres.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.shared_services and self.bastion.env.get("BASTION_DATABASE_URL"):
            _drop_shared_database(self.bastion.env["BASTION_DATABASE_URL"].rsplit("/", 1)[1])


def _wait_for_workers(server: Bastion, workers: int, timeout: float = 60) -> None:
    """With several workers, /health answers once the first is up: wait for all of them."""
    if workers <= 1:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pythons = [
            pid
            for pid in process_tree(server.process.pid)[1:]
            if "bastion" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            or "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        ]
        if len(pythons) >= workers:
            break
        time.sleep(0.2)
    # Each worker imports and starts its lifespan on its own; give the last one time to listen.
    time.sleep(2)
    for _ in range(4 * workers):
        httpx.get(server.url + "/health", timeout=10)


def start_deployment(
    workdir: Path,
    config: str = "development",
    *,
    workers: int = 1,
    private: bool = True,
    **settings: str,
) -> Deployment:
    """Bastion as deployed: `development` (SQLite, no Redis) or `production` (PostgreSQL + Redis,
    production mode, KEK and pepper set, `db upgrade`, ES256 and RS256 keys made with the CLI).

    `private=True` starts a private PostgreSQL and redis-server (their CPU is counted);
    `private=False` uses the machine's shared 127.0.0.1:5432 (a fresh database) and :6379.
    Development mode with several workers is impossible (they need Redis) and is refused.
    """
    if config not in ("development", "production"):
        raise ValueError(f"config must be development or production, not {config!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    if config == "development":
        if workers > 1:
            raise ValueError("development mode runs one worker: several workers need Redis")
        settings.setdefault("access_token_algorithm", "ES256")
        server = start_bastion(workdir, workers=1, **settings)
        return Deployment(config, workers, server)
    postgres = redis = None
    shared_name = ""
    try:
        if private:
            postgres, redis = PrivatePostgres.start(), PrivateRedis.start()
            database_url, redis_url = postgres.url, redis.url
        else:
            database_url, shared_name = _fresh_shared_database()
            redis_url = SHARED_REDIS
        port = free_port()
        production = {
            "issuer": f"http://127.0.0.1:{port}",
            "database_url": database_url,
            "redis_url": redis_url,
            "key_encryption_key": base64_key(),
            "client_secret_pepper": secrets.token_urlsafe(32),
            # A new key signs at once (the README's first production key); rotation is not measured.
            "key_prepublication": "0",
            "access_token_algorithm": "ES256",
        }
        production.update(settings)
        env = bastion_env(**production)
        data_dir = workdir / "bastion-data"
        for args in (["db", "upgrade"], ["keys", "rotate", "--alg", "ES256"], ["keys", "rotate", "--alg", "RS256"]):
            done = subprocess.run(
                [sys.executable, "-m", "bastion", *args, "--data-dir", str(data_dir)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if done.returncode != 0:
                raise RuntimeError(f"bastion {' '.join(args)} failed:\n{done.stderr}")
        server = start_bastion(workdir, port=port, workers=workers, data_dir=data_dir, **production)
        _wait_for_workers(server, workers)
    except BaseException:
        if postgres is not None:
            postgres.stop()
        if redis is not None:
            redis.stop()
        if shared_name:
            _drop_shared_database(shared_name)
        raise
    return Deployment(config, workers, server, postgres, redis, shared_services=not private)


def base64_key() -> str:
    """32 random bytes, base64url without padding: a key-encryption key for the environment."""
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def postgres_connections(deployment: Deployment) -> int:
    """Backends the private PostgreSQL is running for clients (children of the postmaster that are
    not its own auxiliary processes), -1 when PostgreSQL is not private."""
    if deployment.postgres is None:
        return -1
    count = 0
    for pid in process_tree(deployment.postgres.postmaster_pid)[1:]:
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            # A client backend's title is "postgres: USER DATABASE HOST(PORT) STATE".
            if "127.0.0.1(" in title:
                count += 1
    return count


def redis_clients(deployment: Deployment) -> int:
    """`connected_clients` of the deployment's Redis (less our own probe), -1 without Redis."""
    url = deployment.bastion.env.get("BASTION_REDIS_URL")
    if not url:
        return -1
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("clients")["connected_clients"]) - 1
    finally:
        client.close()
