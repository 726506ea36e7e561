"""Soak: mixed traffic at about 70% of measured capacity on the production configuration.

    python3 dev.py run python bench/soak.py [--minutes 10] [--workers 1] [--load 0.7]
        [--capacity-seconds 20] [--interval 60] [--shared-services]

Bastion runs as deployed (`_harness.start_deployment("production")`: a private PostgreSQL and
redis-server, production mode, keys made with the CLI). One Node load generator
(`bench/node/soak_driver.mjs`) sends a mix of operations: Client Credentials grants, code
exchanges (/authorize with a signed-in session, then the exchange), chained refresh grants,
introspection, userinfo, and complete logins (the login form, production Argon2id). First it
measures capacity (closed loop, `--concurrency` loops, `--capacity-seconds`), then it sends
operations open loop at `--load` x that rate for `--minutes`.

Every `--interval` seconds it prints: operations/s, requests, p50/p99 request latency, 5xx
responses, failed operations, RSS of all Bastion processes, PostgreSQL client backends, Redis
clients. Exit status 1 on any 5xx, or when RSS grew more than 20% from the first interval to the
last; 0 otherwise. `run_soak()` is the engine (tests/server/test_soak.py runs it for 60 s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The bench directory is put on the path first, for tests/server/test_soak.py's import of this module.
from _harness import (
    NODE_DIR,
    Deployment,
    ensure_node_packages,
    postgres_connections,
    redis_clients,
    start_deployment,
)

CALLBACK = "https://spa.bench.test/callback"
RESOURCE = "https://api.bench.test/"
PASSWORD = "a long and unusual passphrase"  # noqa: S105 - the soak users' throwaway password
# Operations per 100: mostly grants, as an API's traffic; logins cost an Argon2id hash each.
WEIGHTS = {"cc": 35, "code": 12, "refresh": 20, "introspect": 15, "userinfo": 15, "login": 3}
RSS_GROWTH_LIMIT = 0.20


@dataclass
class Interval:
    """One reporting interval of the soak."""

    t: float
    ops_per_s: float
    requests: int
    p50: float | None
    p99: float | None
    s5xx: int
    failed: int
    dropped: int
    rss: int
    pg_backends: int
    redis_clients: int
    statuses: dict[str, int]


@dataclass
class SoakReport:
    capacity: float
    rate: float
    intervals: list[Interval] = field(default_factory=list)
    first_5xx: str | None = None
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def total_5xx(self) -> int:
        return sum(i.s5xx for i in self.intervals)

    @property
    def rss_growth(self) -> float:
        if len(self.intervals) < 2 or not self.intervals[0].rss:
            return 0.0
        return self.intervals[-1].rss / self.intervals[0].rss - 1

    @property
    def passed(self) -> bool:
        return self.total_5xx == 0 and self.rss_growth <= RSS_GROWTH_LIMIT


def _setup(deployment: Deployment, users: int, browsers: int) -> dict[str, Any]:
    server = deployment.bastion
    cc = server.create_client(
        "--name", "soak service", "--grant", "client_credentials", "--scope", "read", "--audience", RESOURCE
    )
    rs = server.create_client(
        "--name", "soak api", "--grant", "client_credentials", "--introspect", "--audience", RESOURCE
    )
    spa = server.create_client(
        "--name", "soak spa", "--grant", "authorization_code", "--grant", "refresh_token",
        "--auth-method", "none", "--redirect-uri", CALLBACK, "--scope", "openid offline_access",
        "--audience", RESOURCE,
    )  # fmt: skip
    names = [f"soak{index}" for index in range(users)]
    for name in names:
        subprocess.run(
            [
                *(sys.executable, "-m", "bastion", "users", "create", "--username", name),
                *("--password-stdin", "--data-dir", str(server.data_dir)),
            ],
            env=server.env,
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=120,
        )
    return {
        "base": server.url,
        "cc": {"id": cc["client_id"], "secret": cc["client_secret"]},
        "rs": {"id": rs["client_id"], "secret": rs["client_secret"]},
        "spa": spa["client_id"],
        "redirect_uri": CALLBACK,
        "users": names,
        "password": PASSWORD,
        "weights": WEIGHTS,
        "browsers": browsers,
    }


def _drive(
    workdir: Path, config: dict[str, Any], on_line: Callable[[dict[str, Any]], None], timeout: float
) -> None:
    path = workdir / f"soak-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(config))
    errors = workdir / "soak-driver.err"
    with (
        errors.open("w") as stderr,
        subprocess.Popen(
            ["node", "soak_driver.mjs", str(path)], cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=stderr, text=True
        ) as process,
    ):
        try:
            for line in process.stdout or ():
                if line.startswith("{"):
                    on_line(json.loads(line))
            process.wait(timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    if process.returncode != 0:
        raise RuntimeError(f"soak driver exited {process.returncode}: {errors.read_text()[-2000:]}")


def run_soak(
    seconds: float,
    *,
    interval: float = 60,
    load: float = 0.7,
    capacity_seconds: float = 20,
    workers: int = 1,
    concurrency: int = 16,
    private: bool = True,
    users: int = 4,
    browsers: int = 8,
    out: Callable[[str], None] = print,
) -> SoakReport:
    """Start the production deployment, measure capacity, then soak at `load` x capacity."""
    ensure_node_packages()
    with tempfile.TemporaryDirectory(prefix="bastion-soak-") as tmp:
        workdir = Path(tmp)
        started = time.monotonic()
        deployment = start_deployment(workdir / "production", "production", workers=workers, private=private)
        try:
            base = _setup(deployment, users, browsers)
            out(f"production deployment started and set up in {time.monotonic() - started:.0f} s")
            ops: list[float] = []

            def capacity_line(line: dict[str, Any]) -> None:
                if line.get("final"):
                    ops.append(line["ok"] / max(line["t"], 1e-9))

            _drive(
                workdir,
                {**base, "rate": 0, "concurrency": concurrency, "seconds": capacity_seconds, "interval": 3600},
                capacity_line,
                timeout=capacity_seconds + 120,
            )
            capacity = ops[0]
            report = SoakReport(capacity, capacity * load)
            out(
                f"capacity {capacity:.0f} operations/s (closed loop, {concurrency} loops, {capacity_seconds:g} s); "
                f"soaking at {report.rate:.0f}/s ({load:.0%}) for {seconds:g} s; mix {WEIGHTS}"
            )
            if not private:
                out("note: shared PostgreSQL and Redis: their connections are not counted")
            out(
                f"{'t (s)':>6} {'ops/s':>7} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} {'5xx':>4} {'failed':>6}"
                f" {'dropped':>7} {'RSS MB':>7} {'PG conns':>8} {'Redis':>5}"
            )
            previous = [0.0]

            def soak_line(line: dict[str, Any]) -> None:
                if "t" not in line:
                    return
                elapsed = line["t"] - previous[0]
                previous[0] = line["t"]
                row = Interval(
                    t=line["t"],
                    ops_per_s=line["ok"] / elapsed if elapsed > 0 else 0.0,
                    requests=line["requests"],
                    p50=line["p50"],
                    p99=line["p99"],
                    s5xx=line["s5xx"],
                    failed=line["non2xx"],
                    dropped=line["dropped"],
                    rss=deployment.bastion_rss(),
                    pg_backends=postgres_connections(deployment),
                    redis_clients=redis_clients(deployment),
                    statuses=line["statuses"],
                )
                if line["final"] and elapsed < interval / 2 and report.intervals:
                    # The tail after the last full interval: merged into it, not a row of its own.
                    last = report.intervals[-1]
                    last.s5xx += row.s5xx
                    last.failed += row.failed
                    last.dropped += row.dropped
                else:
                    report.intervals.append(row)
                    ms = lambda v: f"{v:7.1f}" if v is not None else "      -"  # noqa: E731
                    out(
                        f"{row.t:6.0f} {row.ops_per_s:7.1f} {row.requests:8d} {ms(row.p50)} {ms(row.p99)} {row.s5xx:4d}"
                        f" {row.failed:6d} {row.dropped:7d} {row.rss / 2**20:7.1f} {row.pg_backends:8d}"
                        f" {row.redis_clients:5d}"
                    )
                report.first_5xx = report.first_5xx or line.get("first_5xx")
                report.failures = line.get("failures") or report.failures

            _drive(
                workdir,
                {**base, "rate": report.rate, "concurrency": concurrency, "seconds": seconds, "interval": interval},
                soak_line,
                timeout=seconds + 300,
            )
        finally:
            deployment.stop()
    out(
        f"5xx: {report.total_5xx}; RSS growth first to last interval: {report.rss_growth:+.1%} "
        f"(limit +{RSS_GROWTH_LIMIT:.0%})"
    )
    if report.first_5xx:
        out(f"first 5xx: {report.first_5xx}")
    if report.failures:
        out(f"failed operations, first of each kind: {report.failures}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="soak duration (default 10)")
    parser.add_argument("--interval", type=float, default=60, help="seconds per printed row (default 60)")
    parser.add_argument("--load", type=float, default=0.7, help="fraction of measured capacity (default 0.7)")
    parser.add_argument("--capacity-seconds", type=float, default=20, help="capacity measurement (default 20 s)")
    parser.add_argument("--workers", type=int, default=1, help="Bastion workers (default 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="loops while measuring capacity (default 16)")
    parser.add_argument(
        "--shared-services", action="store_true", help="the machine's 127.0.0.1:5432 and :6379 instead of private ones"
    )
    args = parser.parse_args()
    report = run_soak(
        args.minutes * 60,
        interval=args.interval,
        load=args.load,
        capacity_seconds=args.capacity_seconds,
        workers=args.workers,
        concurrency=args.concurrency,
        private=not args.shared_services,
    )
    if not report.passed:
        print("FAIL: 5xx responses or RSS growth above the limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
