"""Code exchanges, chained refresh grants and whole authorizations per second, Bastion against a
warmed node-oidc-provider, counting the CPU of every serving process; and complete browser logins
per second at production Argon2id parameters.

    python3 dev.py run python bench/authcode_bench.py [--config production|development|both]
        [--workload code refresh authorization] [--peer-adapter memory redis] [--workers 1]
        [--count 400] [--concurrency 16] [--rounds 3] [--warmup 10] [--login-seconds 15]
        [--shared-services]

Workloads, the same on both sides, driven by one Node load generator (`bench/node/authcode_driver.mjs`)
whose virtual browsers (`--concurrency`) each signed in and consented once before anything is measured:
- `code`: code exchanges. Before each measured run, every browser's session asks /authorize for
  codes (not measured); then each code is exchanged once (PKCE S256, a public client).
- `refresh`: chained refresh grants: each browser sends the refresh token its last grant returned.
- `authorization`: a whole authorization: GET /authorize with the signed-in session and the
  remembered consent (no pages), then the code exchange; one pair is one grant.

Fairness: both servers are first checked to answer the code exchange with an ES256 `at+jwt` access
token, an RS256 ID token and a refresh token that a refresh rotates (the spent one is refused);
each is warmed with `--warmup` seconds (>= 10) of the workload's own traffic (node's JIT needs
seconds); each measured run sends `--count` grants to every server; `--rounds` (>= 3) rounds
alternate the order; medians are printed, as grants/s and grants per CPU-second of every process
that serves them (Bastion's whole process tree, the private PostgreSQL's postmaster and backends and
the private redis-server; node with its threads, plus the peer's private redis-server when it
uses the Redis adapter).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from _harness import (
    NODE_DIR,
    Bastion,
    Deployment,
    PrivateRedis,
    ensure_node_packages,
    free_port,
    median,
    start_deployment,
    start_node,
    stop,
    tree_cpu_seconds,
)

CALLBACK = "https://spa.bench.test/callback"
RESOURCE = "https://api.bench.test/"
SCOPE = "openid offline_access"
USERNAME = "bench"
PASSWORD = "a long and unusual passphrase"  # noqa: S105 - the bench user's throwaway password
WORKLOADS = ("code", "refresh", "authorization")
# oidc-provider's in-memory adapter is an LRU of 1000 entries: a code round keeps its codes, the
# refresh tokens they buy and the browsers' sessions and grants in it, so it holds at most this many.
MEMORY_PEER_MAX_CODES = 400


@dataclass
class Contender:
    """A server under measurement, its driver configuration, and how to read its CPU."""

    name: str
    base: str
    client_id: str
    kind: str  # "bastion" or "peer"
    cpu: Callable[[], dict[str, float]]
    counted: str
    workdir: Path
    concurrency: int
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.workdir / "driver.json"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "base": self.base,
            "kind": self.kind,
            "client_id": self.client_id,
            "redirect_uri": CALLBACK,
            "scope": SCOPE,
            "username": USERNAME,
            "password": PASSWORD,
            "browsers": self.concurrency,
            "state": str(self.workdir / "state.json"),
        }
        self.config_file.write_text(json.dumps(config))

    def drive(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            ["node", "authcode_driver.mjs", str(self.config_file), *args],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: driver {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


# Verification: the same tokens on both sides.


def _check_jwt(name: str, token: str, jwks: dict[str, Any], *, alg: str, typ: str | None, aud: str, iss: str) -> None:
    header = jwt.get_unverified_header(token)
    if header.get("alg") != alg or (typ is not None and header.get("typ") != typ):
        raise RuntimeError(f"{name}: header {header}, wanted alg {alg} typ {typ}")
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise RuntimeError(f"{name}: kid {header.get('kid')!r} is not published")
    jwt.decode(token, jwt.PyJWK(key).key, algorithms=[alg], audience=aud, issuer=iss)


def verify(contender: Contender) -> str:
    """One browser signs in, exchanges its code, refreshes, and replays the spent refresh token."""
    answer = contender.drive("verify")
    first, second = answer["first"], answer["second"]
    if not isinstance(first, dict) or not isinstance(second, dict):
        raise RuntimeError(f"{contender.name}: exchange or refresh failed: {first!r} {second!r}")
    jwks = httpx.get(contender.base + "/jwks", timeout=10).json()
    issuer = contender.base
    for label, grant in (("code exchange", first), ("refresh", second)):
        _check_jwt(
            f"{contender.name} {label} access token", grant["access_token"], jwks,
            alg="ES256", typ="at+jwt", aud=RESOURCE, iss=issuer,
        )  # fmt: skip
        _check_jwt(
            f"{contender.name} {label} ID token", grant["id_token"], jwks,
            alg="RS256", typ=None, aud=contender.client_id, iss=issuer,
        )  # fmt: skip
    if not second.get("refresh_token") or second["refresh_token"] == first["refresh_token"]:
        raise RuntimeError(f"{contender.name}: the refresh grant did not rotate the refresh token")
    if answer["replay_status"] != 400 or "invalid_grant" not in answer["replay_body"]:
        raise RuntimeError(f"{contender.name}: a spent refresh token was not refused: {answer['replay_body']}")
    return "ES256 at+jwt, RS256 ID token, rotated refresh token (the spent one refused with invalid_grant)"


# Measurement.


def run_workload(contender: Contender, workload: str, count: int | str) -> dict[str, Any]:
    """One run of `count` grants (or "Ns" seconds); the CPU of the serving processes around it.
    For `code`, the codes are minted first, outside the measured window."""
    minted = contender.workdir / "codes.json"
    if workload == "code":
        mint = contender.drive("mint", str(count), str(minted))
        if mint["bad"]:
            raise RuntimeError(f"{contender.name}: minting codes failed: {mint['first_failure']}")
    before = contender.cpu()
    if workload == "code":
        result = contender.drive("exchange", str(minted))
    else:
        result = contender.drive("refresh" if workload == "refresh" else "authorize", str(count))
    after = contender.cpu()
    result["cpu"] = {name: after[name] - before[name] for name in after}
    return result


def warm(contender: Contender, workload: str, seconds: float, batch: int) -> float:
    """`seconds` of the workload's own traffic, unmeasured; returns the seconds actually driven."""
    if workload != "code":
        return float(contender.drive("refresh" if workload == "refresh" else "authorize", f"{seconds:g}s")["seconds"])
    driven = 0.0
    while driven < seconds:
        driven += float(run_workload(contender, "code", batch)["seconds"])
    return driven


def measure(contenders: list[Contender], workload: str, args: argparse.Namespace) -> None:
    print(f"\n== {workload}: warming each server for {args.warmup:g} s of the same traffic", flush=True)
    for contender in contenders:
        driven = warm(contender, workload, args.warmup, min(args.count, MEMORY_PEER_MAX_CODES))
        print(f"  {contender.name:<30} warmed {driven:.1f} s", flush=True)
    for number in range(args.rounds):
        order = contenders if number % 2 == 0 else list(reversed(contenders))
        for contender in order:
            result = run_workload(contender, workload, args.count)
            contender.results.setdefault(workload, []).append(result)
            cpu = result["cpu"]
            parts = " ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "total")
            rate = result["ok"] / result["seconds"] if result["seconds"] else 0.0
            per_cpu = result["ok"] / cpu["total"] if cpu["total"] else 0.0
            print(
                f"  round {number + 1} {contender.name:<30} {rate:8.1f} grants/s {per_cpu:8.1f} grants/CPU-s"
                f"  ok {result['ok']} bad {result['bad']} p50 {result['p50']:.1f} ms p99 {result['p99']:.1f} ms"
                f"  (CPU-s: {parts})",
                flush=True,
            )
            if result["bad"]:
                print(f"    first failure: {result['first_failure']}", file=sys.stderr)


def report(contenders: list[Contender], workloads: list[str]) -> int:
    failed = 0
    for workload in workloads:
        print(f"\n{workload}: medians of {len(contenders[0].results[workload])} rounds")
        rates: dict[str, float] = {}
        efficiency: dict[str, float] = {}
        for contender in contenders:
            runs = contender.results[workload]
            rates[contender.name] = median([r["ok"] / r["seconds"] for r in runs])
            efficiency[contender.name] = median([r["ok"] / max(r["cpu"]["total"], 1e-9) for r in runs])
            p50 = median([r["p50"] for r in runs])
            p99 = median([r["p99"] for r in runs])
            bad = sum(r["bad"] for r in runs)
            failed += bad
            print(
                f"  {contender.name:<30} {rates[contender.name]:8.1f} grants/s {efficiency[contender.name]:8.1f} "
                f"grants/CPU-s  p50 {p50:.1f} ms p99 {p99:.1f} ms  failed {bad}  [{contender.counted}]"
            )
        peers = [c.name for c in contenders if c.kind == "peer"]
        for contender in contenders:
            if contender.kind != "bastion":
                continue
            for peer in peers:
                print(
                  f"  {contender.name} / {peer}: {rates[contender.name] / rates[peer]:.2f}x grants/s, "
                  f"{efficiency[contender.name] / efficiency[peer]:.2f}x grants per CPU-second (target >= 1.0x)"
                )
    if failed:
        print("FAIL: some grants failed; see the first failures above", file=sys.stderr)
        return 1
    return 0


# Setting up the contenders.


def bastion_contender(deployment: Deployment, name: str, workdir: Path, concurrency: int) -> Contender:
    server = deployment.bastion
    client = server.create_client(
        "--name", "bench spa", "--grant", "authorization_code", "--grant", "refresh_token",
        "--auth-method", "none", "--redirect-uri", CALLBACK, "--scope", SCOPE, "--audience", RESOURCE,
    )  # fmt: skip
    create_user(server, USERNAME)
    client_id = str(client["client_id"])
    return Contender(name, server.url, client_id, "bastion", deployment.cpu, deployment.counted(), workdir, concurrency)


def create_user(server: Bastion, username: str) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "bastion", "users", "create", "--username", username),
            *("--password-stdin", "--data-dir", str(server.data_dir)),
        ],
        env=server.env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )


def start_peer(workdir: Path, adapter: str, concurrency: int) -> tuple[Contender, list[Callable[[], None]]]:
    redis = PrivateRedis.start() if adapter == "redis" else None
    port = free_port()
    config = {"port": port, "resource": RESOURCE, "adapter": adapter, "redis_url": redis.url if redis else ""}
    process = start_node(
        "authcode_server.mjs",
        workdir,
        f"oidc-provider-{adapter}",
        f"http://127.0.0.1:{port}/jwks",
        {"BENCH_AUTHCODE": json.dumps(config)},
    )
    node_pid, redis_pid = process.pid, redis.process.pid if redis else 0

    def cpu() -> dict[str, float]:
        spent = {"node": tree_cpu_seconds(node_pid)}
        if redis_pid:
            spent["redis"] = tree_cpu_seconds(redis_pid)
        spent["total"] = sum(spent.values())
        return spent

    counted = "node and its threads" + (" + its private redis-server" if redis else "")
    contender = Contender(
        f"oidc-provider ({adapter})", f"http://127.0.0.1:{port}", "spa", "peer", cpu, counted,
        workdir / f"driver-peer-{adapter}", concurrency,
    )  # fmt: skip
    stops = [lambda: stop(process)] + ([redis.stop] if redis else [])
    return contender, stops


# Logins (a Bastion-only figure: the peer's sign-in is not a password check).


async def token_latencies(base: str, auth: tuple[str, str], seconds: float) -> list[float]:
    samples = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(response.text)
            await asyncio.sleep(0.02)
    return samples


def _sampler(url: str, auth: tuple[str, str], seconds: float) -> subprocess.Popen[str]:
    # The sampler runs in its own process: the login drivers' own CPU work must not delay it.
    return subprocess.Popen(
        [sys.executable, __file__, "--sample-latency", json.dumps([url, *auth, seconds])],
        stdout=subprocess.PIPE,
        text=True,
    )


def logins(deployment: Deployment, client_id: str, seconds: float, concurrency: int) -> None:
    server = deployment.bastion
    users = [f"login{index}" for index in range(4)]
    for username in users:
        create_user(server, username)
    machine = server.create_client("--name", "m", "--grant", "client_credentials", "--scope", "read")
    auth = (machine["client_id"], machine["client_secret"])
    idle_probe = _sampler(server.url, auth, 3)
    idle = json.loads(idle_probe.communicate(timeout=120)[0])
    busy_probe = _sampler(server.url, auth, seconds * 0.8)
    before = deployment.cpu()
    driver = subprocess.run(
        [
            *("node", "logins.mjs", server.url, client_id, CALLBACK, ",".join(users), PASSWORD),
            *(str(seconds), str(concurrency)),
        ],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = deployment.cpu()["total"] - before["total"]
    busy = json.loads(busy_probe.communicate(timeout=120)[0])
    outcome = json.loads(driver.stdout.strip().splitlines()[-1])
    if outcome["failed"]:
        print(f"  logins: {outcome['failed']} failed, first: {outcome['first_failure']}", file=sys.stderr)
    done, elapsed = int(outcome["done"]), float(outcome["seconds"])

    def q99(xs: list[float]) -> float:
        return statistics.quantiles(xs, n=100)[98] if len(xs) > 2 else float("nan")

    print(
        f"\nlogins, bastion {deployment.config} (Argon2id m=19MiB t=2 p=1, {concurrency} browsers): "
        f"{done / elapsed:.1f} logins/s, {done / cpu if cpu else 0:.1f} per CPU-second of the serving processes "
        f"(target >= 30 per core), failed {outcome['failed']}"
    )
    print(
        f"  client_credentials latency at rest p50 {statistics.median(idle):.1f} ms p99 {q99(idle):.1f} ms; "
        f"during the login flood p50 {statistics.median(busy):.1f} ms p99 {q99(busy):.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=("development", "production", "both"), default="production")
    parser.add_argument("--workers", type=int, default=1, help="Bastion workers in production (default 1)")
    parser.add_argument("--workload", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--peer-adapter", nargs="+", choices=("memory", "redis"), default=["memory", "redis"])
    parser.add_argument("--count", type=int, default=400, help="grants per server per measured run (default 400)")
    parser.add_argument("--concurrency", type=int, default=16, help="virtual browsers, grants in flight (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, >= 3 (default 3)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of each workload per server first (>= 10)")
    parser.add_argument("--login-seconds", type=float, default=15, help="logins/s phase per Bastion; 0 skips it")
    parser.add_argument(
        "--shared-services",
        action="store_true",
        help="production on the machine's 127.0.0.1:5432 and :6379 (their CPU is then not counted)",
    )
    # One JSON argument: a client secret may begin with "-", which argparse would take for an option.
    parser.add_argument("--sample-latency", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample_latency:
        url, client_id, secret, seconds = json.loads(args.sample_latency)
        print(json.dumps(asyncio.run(token_latencies(url, (client_id, secret), float(seconds)))))
        return 0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    if args.warmup < 10:
        print(f"note: --warmup {args.warmup:g} is below the 10 s node's JIT needs: do not quote these figures")
    if "code" in args.workload and "memory" in args.peer_adapter and args.count > MEMORY_PEER_MAX_CODES:
        parser.error(f"--count above {MEMORY_PEER_MAX_CODES} with the memory peer: its LRU would drop the codes")
    if args.shared_services:
        print("note: --shared-services: the machine's PostgreSQL and Redis are used; their CPU is NOT counted")
    ensure_node_packages()
    configs = ["development", "production"] if args.config == "both" else [args.config]
    stops: list[Callable[[], None]] = []
    contenders: list[Contender] = []
    deployments: list[Deployment] = []
    with tempfile.TemporaryDirectory(prefix="authcode-bench-") as tmp:
        workdir = Path(tmp)
        try:
            for config in configs:
                workers = args.workers if config == "production" else 1
                private = not args.shared_services
                deployment = start_deployment(workdir / config, config, workers=workers, private=private)
                stops.append(deployment.stop)
                deployments.append(deployment)
                name = f"bastion {config} w{workers}"
                contenders.append(bastion_contender(deployment, name, workdir / f"driver-{config}", args.concurrency))
            for adapter in args.peer_adapter:
                peer, peer_stops = start_peer(workdir, adapter, args.concurrency)
                stops += peer_stops
                contenders.append(peer)
            for contender in contenders:
                contender.write_config()
                try:
                    print(f"{contender.name:<30} {verify(contender)}", flush=True)
                except (RuntimeError, KeyError, ValueError, jwt.PyJWTError) as exc:
                    print(f"verification failed: {exc}", file=sys.stderr)
                    return 2
                contender.drive("signin")
            print("CPU counted: " + "; ".join(f"{c.name}: {c.counted}" for c in contenders))
            for workload in args.workload:
                measure(contenders, workload, args)
            status = report(contenders, args.workload)
            if args.login_seconds > 0:
                for deployment, contender in zip(deployments, contenders, strict=False):
                    logins(deployment, contender.client_id, args.login_seconds, args.concurrency)
            return status
        finally:
            for stop_one in reversed(stops):
                stop_one()


if __name__ == "__main__":
    sys.exit(main())
