"""Client Credentials grants per second: Bastion as deployed against node-oidc-provider.

Both servers run on loopback and issue the same thing: an ES256-signed JWT access token for a
client_secret_basic client, for the same `resource` (the token's audience) and scope. Both get
the same request (the same form body; each Bastion's own client credentials, the peer given the
first's) from the same load generator (npm `autocannon`), one server after the other, never
concurrently.

    python3 dev.py run python bench/token_bench.py [--config development|production|both]
        [--workers 1 2] [--rounds 3] [--duration 10] [--connections 50] [--warmup 10]
        [--shared-services]

Steps: install bench/node's locked npm packages; start Bastion in each configuration asked for
(`_harness.start_deployment`: development = SQLite, one worker; production = a private
PostgreSQL and redis-server, production mode, keys made with the CLI, `--workers` each) and
oidc-provider v9 (`clientCredentials` and `resourceIndicators` with `accessTokenFormat: 'jwt'`,
an ES256 key, the in-memory adapter); verify that each answers 200 with a JWT that verifies
against its own JWKS; warm each up; then measure each `--rounds` (>= 3) times, alternating the
order, and print 2xx responses per second and per CPU-second of every serving process (Bastion's
process tree, PostgreSQL's postmaster and backends, redis-server; node and its threads), medians,
and the ratios to the peer, to Bastion's development figure, and of 2 workers to 1.

Exit status: 0 when every measured response was a 2xx, 1 otherwise (for example when a default
rate limit throttled this successful traffic), 2 when a server failed verification.
With `--fast-path`, nothing is started and no peer is measured: the script says what
`TokenRouteMiddleware` (POST /token served in front of the router) is worth, as CPU microseconds
per client_credentials grant in process, the same request through the middleware and through
the router, alternating rounds (`--rounds`, medians).
With `--profile DIR`, the measured Bastion runs are sampled with py-spy (installed into the venv
with pip on first use): DIR/bastion-N.txt (collapsed stacks) and DIR/bastion-N-top.txt (the
functions with the most samples). Profiling costs the worker some speed; do not quote its rates.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from _harness import (
    Bastion,
    Deployment,
    LoadResult,
    autocannon,
    ensure_node_packages,
    free_port,
    median,
    start_deployment,
    start_node,
    stop,
    tree_cpu_seconds,
)

RESOURCE = "https://api.bench.test/"
SCOPE = "read write"
TARGET_RATIO = 1.2


@dataclass(frozen=True)
class Measured:
    """One measured run and the CPU time every serving process spent during it."""

    load: LoadResult
    cpu: float
    parts: dict[str, float]

    @property
    def per_cpu_second(self) -> float:
        return self.load.ok / self.cpu if self.cpu else 0.0


@dataclass(frozen=True)
class Target:
    """A server under load: its token endpoint and its JWKS, and its own issuer."""

    name: str
    issuer: str
    token_url: str
    jwks_url: str
    pid: int


def token_request(client_id: str, client_secret: str) -> tuple[dict[str, str], str]:
    """The one request both servers get: RFC 6749 §4.4.2 with Basic auth (§2.3.1) and a resource (RFC 8707)."""
    credentials = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    headers = {
        "authorization": f"Basic {credentials}",
        "content-type": "application/x-www-form-urlencoded",
    }
    body = urlencode({"grant_type": "client_credentials", "scope": SCOPE, "resource": RESOURCE})
    return headers, body


def verify(target: Target, headers: dict[str, str], body: str) -> dict[str, Any]:
    """POST the request once and check a 200 with an ES256 `at+jwt` that verifies against the JWKS."""
    response = httpx.post(target.token_url, headers=headers, content=body, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"{target.name}: POST /token answered {response.status_code}: {response.text}")
    token = response.json()["access_token"]
    header = jwt.get_unverified_header(token)
    if header.get("alg") != "ES256" or header.get("typ") != "at+jwt":
        raise RuntimeError(f"{target.name}: token header is {header}, wanted alg ES256 and typ at+jwt")
    jwks = httpx.get(target.jwks_url, timeout=10).json()
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise RuntimeError(f"{target.name}: kid {header.get('kid')!r} is not in {target.jwks_url}")
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["ES256"],
        audience=RESOURCE,
        issuer=target.issuer,
        options={"require": ["exp", "iat", "jti", "sub", "client_id"]},
    )
    if claims.get("scope") != SCOPE:
        raise RuntimeError(f"{target.name}: token scope is {claims.get('scope')!r}, wanted {SCOPE!r}")
    return claims


def start_oidc_provider(workdir: Path, client_id: str, client_secret: str) -> tuple[subprocess.Popen[bytes], Target]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = json.dumps(
        {"port": port, "client_id": client_id, "client_secret": client_secret, "scope": SCOPE, "resource": RESOURCE}
    )
    process = start_node(
        "oidc_server.mjs",
        workdir,
        "oidc-provider",
        issuer + "/.well-known/openid-configuration",
        {"BENCH_OIDC": config},
    )
    return process, Target("oidc-provider", issuer, issuer + "/token", issuer + "/jwks", process.pid)


def bastion_target(server: Bastion, name: str) -> Target:
    return Target(name, server.url, server.url + "/token", server.url + "/jwks", server.process.pid)


class Profiler:
    """py-spy attached to the Bastion worker during each measured run (a bench-only tool).

    Each run leaves DIR/bastion-N.txt (collapsed stacks, the input of any flame-graph tool) and
    DIR/bastion-N-top.txt (the functions with the most samples, inclusive and self).
    """

    def __init__(self, directory: Path, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.runs = 0
        self.py_spy = Path(sys.executable).parent / "py-spy"
        directory.mkdir(parents=True, exist_ok=True)
        if not self.py_spy.exists():
            pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "py-spy"]
            subprocess.run(pip, check=True)

    def around(self, run: Callable[[], LoadResult], seconds: float) -> LoadResult:
        self.runs += 1
        raw = self.directory / f"bastion-{self.runs}.txt"
        record = [str(self.py_spy), "record", "--pid", str(self.pid), "--duration", str(max(1, int(seconds) - 1))]
        record += ["--rate", "100", "--nonblocking", "--format", "raw", "--output", str(raw)]
        spy = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = run()
        spy.wait(60)
        if raw.exists():
            top = summarise_stacks(raw.read_text())
            (self.directory / f"bastion-{self.runs}-top.txt").write_text(top)
            print(top, flush=True)
        return result


def summarise_stacks(collapsed: str, lines: int = 25) -> str:
    """The functions with the most samples in py-spy's collapsed stacks ("f1;f2;f3 COUNT" lines)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        # A frame reads "function (path:line)"; drop the line so a function is counted once.
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    out = [f"{total} samples", "inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(lines)]
    out += ["self:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(lines)]
    return "\n".join(out) + "\n"


@dataclass
class Contender:
    """One server under measurement: where to send the requests, and how to read its CPU."""

    target: Target
    cpu: Callable[[], dict[str, float]]
    counted: str
    label: str
    headers: dict[str, str]

    @property
    def name(self) -> str:
        return self.label


def measure(
    contenders: list[Contender],
    body: str,
    *,
    connections: int,
    duration: float,
    rounds: int,
    profiler: Profiler | None,
) -> dict[str, list[Measured]]:
    results: dict[str, list[Measured]] = {c.name: [] for c in contenders}
    for number in range(rounds):
        # Alternate the order so slow drift on a shared machine hits every contender alike.
        order = contenders if number % 2 == 0 else list(reversed(contenders))
        for contender in order:
            target = contender.target

            def run(target: Target = target, headers: dict[str, str] = contender.headers) -> LoadResult:
                return autocannon(
                    target.token_url, body=body, headers=headers, connections=connections, duration=duration
                )

            before = contender.cpu()
            profiled = profiler is not None and contender.name == "bastion development w1"
            result = profiler.around(run, duration) if profiler is not None and profiled else run()
            after = contender.cpu()
            parts = {name: after[name] - before[name] for name in after}
            measured = Measured(result, parts["total"], parts)
            results[contender.name].append(measured)
            breakdown = " ".join(f"{k} {v:.2f}" for k, v in parts.items() if k != "total")
            print(
                f"  round {number + 1} {contender.name:<24} {result.per_second:8.1f} grants/s"
                f" {measured.per_cpu_second:8.1f} grants/CPU-s  (CPU-s: {breakdown})"
                f"  2xx {result.ok}, non-2xx {result.non_2xx}, errors {result.errors}, timeouts {result.timeouts},"
                f" p50 {result.latency_p50:.0f} ms, p99 {result.latency_p99:.0f} ms",
                flush=True,
            )
    return results


PEER = "oidc-provider"


def report(results: dict[str, list[Measured]], contenders: list[Contender]) -> int:
    rates = {name: median([m.load.per_second for m in runs]) for name, runs in results.items()}
    efficiency = {name: median([m.per_cpu_second for m in runs]) for name, runs in results.items()}
    failures = {
        name: sum(m.load.non_2xx + m.load.errors + m.load.timeouts for m in runs) for name, runs in results.items()
    }
    print()
    print(f"{'server':<24} {'grants/s':>9} {'grants/CPU-s':>13}  (medians)  CPU counted")
    for contender in contenders:
        name = contender.name
        print(
            f"{name:<24} {rates[name]:9.1f} {efficiency[name]:13.1f}  non-2xx/errors/timeouts: {failures[name]}"
            f"  [{contender.counted}]"
        )
    print()

    def ratio(values: dict[str, float], a: str, b: str) -> float:
        return values[a] / values[b] if values.get(b) else float("inf")

    for name in results:
        if name == PEER:
            continue
        line = (
            f"{name:<24} vs {PEER}: {ratio(rates, name, PEER):.2f}x grants/s,"
            f" {ratio(efficiency, name, PEER):.2f}x per CPU-s"
        )
        dev = "bastion development w1"
        if name.startswith("bastion production") and dev in results:
            line += (
                f"; vs Bastion development: {ratio(rates, name, dev):.2f}x grants/s,"
                f" {ratio(efficiency, name, dev):.2f}x per CPU-s"
            )
        print(line)
    if "bastion production w1" in results and "bastion production w2" in results:
        print(
            "bastion production 2 workers vs 1 worker: "
            f"{ratio(efficiency, 'bastion production w2', 'bastion production w1'):.2f}x grants per CPU-second "
            f"(target >= 0.9x), {ratio(rates, 'bastion production w2', 'bastion production w1'):.2f}x grants/s"
        )
    for name in results:
        if name.startswith("bastion production w1"):
            verdict = "meets" if ratio(rates, name, PEER) >= TARGET_RATIO else "falls short of"
            print(f"{name}: {verdict} the {TARGET_RATIO}x target against {PEER} in grants/s")
    if any(failures.values()):
        print("FAIL: some responses were not 2xx (throttled or failed); see the counts above", file=sys.stderr)
        return 1
    return 0


async def fast_path(rounds: int, count: int) -> None:
    """CPU per grant through `TokenRouteMiddleware` and through the router, in one process."""
    import statistics
    import time

    from grant_instructions import InProcessGrants

    async def cpu_us(driver: InProcessGrants, root: str) -> float:
        started = time.process_time_ns()
        for _ in range(count):
            await driver.grant(root)
        return (time.process_time_ns() - started) / count / 1000

    with tempfile.TemporaryDirectory(prefix="bastion-fast-path-") as tmp:
        driver = InProcessGrants()
        await driver.open(tmp)
        await cpu_us(driver, "")
        await cpu_us(driver, "/routed")
        runs = [(await cpu_us(driver, ""), await cpu_us(driver, "/routed")) for _ in range(rounds)]
        await driver.close()
    fast, routed = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"CPU per grant, median of {rounds} x {count}: through TokenRouteMiddleware {fast:.1f} us, "
          f"through the router {routed:.1f} us: {routed / fast:.2f}x")


def _node_cpu(pid: int) -> dict[str, float]:
    spent = tree_cpu_seconds(pid)
    return {"node": spent, "total": spent}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per server, alternating (>= 3, default 3)")
    parser.add_argument("--warmup", type=float, default=10, help="warm-up seconds per server (default 10)")
    parser.add_argument(
        "--config",
        choices=("development", "production", "both"),
        default="both",
        help="Bastion as deployed: development (SQLite) or production (PostgreSQL + Redis); default both",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="worker counts to measure in production (default 1)"
    )
    parser.add_argument(
        "--shared-services",
        action="store_true",
        help="production on the machine's 127.0.0.1:5432 and :6379 (their CPU is then not counted)",
    )
    parser.add_argument("--profile", type=Path, help="record the measured Bastion runs with py-spy into this directory")
    parser.add_argument("--fast-path", action="store_true", help="only what TokenRouteMiddleware is worth, in process")
    args = parser.parse_args()
    if args.fast_path:
        import asyncio

        asyncio.run(fast_path(args.rounds, 1000))
        return 0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (medians of alternating rounds)")

    ensure_node_packages()
    wanted: list[tuple[str, int]] = []
    if args.config in ("development", "both"):
        wanted.append(("development", 1))
        if any(w > 1 for w in args.workers):
            print("note: development mode runs one worker (several workers need Redis); measured with 1")
    if args.config in ("production", "both"):
        wanted += [("production", w) for w in sorted(set(args.workers))]
    if args.shared_services and args.config != "development":
        print("note: --shared-services: the machine's PostgreSQL and Redis serve production; their CPU is NOT counted")
    with tempfile.TemporaryDirectory(prefix="bastion-token-bench-") as tmp:
        workdir = Path(tmp)
        deployments: list[Deployment] = []
        node: subprocess.Popen[bytes] | None = None
        try:
            client_id = client_secret = ""
            contenders: list[Contender] = []
            for config, workers in wanted:
                deployment = start_deployment(
                    workdir / f"{config}-w{workers}", config, workers=workers, private=not args.shared_services
                )
                deployments.append(deployment)
                # Each Bastion makes its own client; the peer is given the first one's id and secret.
                client = deployment.bastion.create_client(
                    "--name", "bench", "--grant", "client_credentials", "--scope", SCOPE, "--audience", RESOURCE
                )
                if not client_id:
                    client_id, client_secret = client["client_id"], client["client_secret"]
                headers, body = token_request(client["client_id"], client["client_secret"])
                name = f"bastion {config} w{workers}"
                target = bastion_target(deployment.bastion, name)
                contenders.append(Contender(target, deployment.cpu, deployment.counted(), name, headers))
            node, peer = start_oidc_provider(workdir, client_id, client_secret)
            node_pid = peer.pid
            headers, body = token_request(client_id, client_secret)
            contenders.append(Contender(peer, lambda: _node_cpu(node_pid), "node and its threads", PEER, headers))
            for contender in contenders:
                try:
                    claims = verify(contender.target, contender.headers, body)
                except (RuntimeError, KeyError, ValueError, jwt.PyJWTError) as exc:
                    print(f"verification failed: {exc}", file=sys.stderr)
                    return 2
                aud, scope = claims["aud"], claims["scope"]
                print(f"{contender.name:<24} 200 with an ES256 at+jwt for aud={aud} scope={scope!r}")
            print(
                f"warm-up: {args.warmup:g} s per server; measuring {args.rounds} x {args.duration:g} s, "
                f"{args.connections} connections, POST /token, order alternating each round",
                flush=True,
            )
            for contender in contenders:
                autocannon(
                    contender.target.token_url,
                    body=body,
                    headers=contender.headers,
                    connections=args.connections,
                    duration=args.warmup,
                )
            first = next((d for d in deployments if d.config == "development"), None)
            profiler = Profiler(args.profile, first.bastion.process.pid) if args.profile and first else None
            results = measure(
                contenders,
                body,
                connections=args.connections,
                duration=args.duration,
                rounds=args.rounds,
                profiler=profiler,
            )
            return report(results, contenders)
        finally:
            if node is not None:
                stop(node)
            for deployment in deployments:
                deployment.stop()


if __name__ == "__main__":
    sys.exit(main())
