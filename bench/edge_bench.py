"""nginx in front of a Python JSON API: unprotected, and with `bastion edge serve` deciding.

    python3 dev.py run python bench/edge_bench.py [--rounds 3] [--requests 20000]
        [--connections 32] [--warmup 10] [--decisions 20000]

Everything is a real process on loopback, driven by one load generator, npm `autocannon`
(bench/node; wrk is not used):

- the upstream: a small JSON API (Starlette under uvicorn, one worker, uvloop, httptools, no
  access log) reading one row from SQLite per request (`GET /notes/{id}`: a note by primary key,
  plus the `X-Bastion-Sub` the proxy passed, so the identity reaching the upstream is checked);
- a token issuer: discovery and JWKS served from this script (read once by the decision
  service at start-up, never during a run); ES256 `at+jwt` tokens;
- (a) unprotected: nginx as `bastion edge render nginx` writes it with `auth_request off;`, so
  the same header allowlist, keepalive and logging, straight to the upstream;
- (b) protected: the rendered nginx with `bastion edge serve` deciding every request (a valid
  token, the route's scope checked, one quota per `sub` counted in memory);
- (c) protected with the decision cache on (`decision_cache_seconds: 60`; OFF by default): the
  same, with a second `bastion edge serve` process.

Fairness (bench/README.md): every side is verified on the measured request before anything is
measured (200 with the same row; for (b) and (c) the sub reached the upstream, no token is 401
and a token without the scope 403); each side is warmed for `--warmup` seconds; every run is
`--requests` requests over `--connections` connections; at least 3 rounds, the order reversed
every round; medians; CPU-seconds of every serving process (each nginx's master and workers, the
decision service, the upstream), never the load generator's. Then the decision service alone:
decisions/s of `/decide` asked directly as nginx asks it, cache off and on, alternating.

Any non-2xx or socket error in a measured run makes the exit status 1; a failed verification 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    LoadResult,
    autocannon,
    ensure_node_packages,
    free_port,
    median,
    stop,
    tree_cpu_seconds,
    wait_until_ready,
)

AUDIENCE = "https://api.bench.test"
SCOPE = "notes:read"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

UPSTREAM = r'''
import sqlite3, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

db = sqlite3.connect(sys.argv[2], check_same_thread=False)

async def note(request):
    row = db.execute("SELECT id, title, body FROM notes WHERE id = ?", (int(request.path_params["id"]),)).fetchone()
    if row is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse({"id": row[0], "title": row[1], "body": row[2],
                         "viewer": request.headers.get("x-bastion-sub")})

app = Starlette(routes=[Route("/notes/{id:int}", note)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            loop="uvloop", http="httptools", server_header=False)
'''

# The repo's demo notes API (FastAPI, bastion.guard): it validates the token itself, in both runs,
# as an API behind the edge in deployment 3 ("both") does. GET /me: the token checked, the caller
# described through a response model.
DEMO_UPSTREAM = r'''
import json, sys
import uvicorn
from bastion.demo import create_app
from bastion.protocol.rfc9068 import TrustedIssuer

issuer, audience, jwks = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
app = create_app(static_issuers=[(TrustedIssuer(issuer, audience), jwks)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            loop="uvloop", http="httptools", server_header=False)
'''

# -- the issuer: discovery and JWKS, read by the decision service at start-up ----------------------


@dataclass
class Issuer:
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    kid: str = "bench-es256"
    url: str = ""

    def mint(self, scope: str = SCOPE, sub: str = "bench-user") -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": sub, "aud": AUDIENCE, "exp": now + 3600, "iat": now,
                  "jti": uuid.uuid4().hex, "client_id": "bench-client", "scope": scope}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"typ": "at+jwt", "kid": self.kid})

    def documents(self) -> dict[str, bytes]:
        jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True) | {"kid": self.kid, "alg": "ES256", "use": "sig"}
        meta = {"issuer": self.url, "jwks_uri": self.url + "/jwks", "token_endpoint": self.url + "/token"}
        return {"/.well-known/openid-configuration": json.dumps(meta).encode(),
                "/jwks": json.dumps({"keys": [jwk]}).encode()}


@contextlib.contextmanager
def serve_issuer(issuer: Issuer) -> Iterator[None]:
    port = free_port()
    issuer.url = f"http://127.0.0.1:{port}"
    documents = issuer.documents()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=86400")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# -- the processes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """What nginx forwards to: `sqlite` (a Starlette endpoint reading one row) or `demo` (the
    repo's notes API, which checks the token itself)."""

    name: str
    path: str  # the measured request
    route: str  # the policy's route for it
    description: str


UPSTREAMS = {
    "sqlite": Upstream("sqlite", "/notes/1", "/notes/{id}",
                       "a Starlette JSON API under uvicorn (1 worker, uvloop, httptools, no access log), "
                       "one SQLite row read per request"),
    "demo": Upstream("demo", "/me", "/me",
                     "the demo notes API (FastAPI + bastion.guard, validating the token itself in every run) "
                     "under uvicorn (1 worker, uvloop, httptools, no access log), GET /me"),
}


@dataclass
class Side:
    """One configuration measured through its own nginx: its name and its serving processes."""

    name: str
    url: str
    processes: dict[str, subprocess.Popen[bytes]]
    runs: list[LoadResult] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)

    def cpu_now(self) -> dict[str, float]:
        return {name: tree_cpu_seconds(p.pid) for name, p in self.processes.items()}


def start(argv: Sequence[str], log: Path, ready: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        process = subprocess.Popen(list(argv), stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(ready, process, log)
    except BaseException:
        stop(process)
        raise
    return process


def write_policy(
    directory: Path, issuer: Issuer, listen: int, decision: int, upstream: int, cache: int, route: str
) -> Path:
    directory.mkdir(parents=True)
    policy = directory / "policy.yaml"
    policy.write_text(
        f"listen: 127.0.0.1:{listen}\ndecision: 127.0.0.1:{decision}\nissuer: {issuer.url}\n"
        f"audience: {AUDIENCE}\nupstream: http://127.0.0.1:{upstream}\ndecision_cache_seconds: {cache}\n"
        "routes:\n"
        f"  - path: \"{route}\"\n    methods: [GET]\n    scopes: [{SCOPE}]\n"
        "    quotas: [{per: sub, limit: 1000000000, window: minute}]\n"
    )
    return policy


def render_nginx(policy: Path, directory: Path, *, protected: bool) -> Path:
    out = directory / "nginx"
    argv = [sys.executable, "-m", "bastion", "edge", "render", "nginx", "--policy", str(policy), "-o", str(out)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    conf = out / "nginx.conf"
    if not protected:
        text = conf.read_text()
        line = "auth_request /.bastion-edge/decide;"
        if text.count(line) != 1:
            sys.exit(f"bench: the rendered nginx.conf has no single `{line}` line to turn off")
        conf.write_text(text.replace(line, "auth_request off;  # (a) unprotected: the same nginx, no decision"))
    for sub in ("logs", "tmp"):
        (out / sub).mkdir(exist_ok=True)
    return out


def start_nginx(directory: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [NGINX, "-p", str(directory), "-c", "nginx.conf", "-e", "logs/error.log", "-g", "daemon off;"]
    return start(argv, directory / "nginx.out", f"http://127.0.0.1:{port}/")


def start_edge(policy: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bastion", "edge", "serve", "--policy", str(policy), "--port", str(port)]
    return start(argv, policy.with_suffix(".log"), f"http://127.0.0.1:{port}/decide")


def make_database(path: Path) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL)")
        db.executemany("INSERT INTO notes VALUES (?, ?, ?)",
                       [(i, f"note {i}", "lorem ipsum " * 20) for i in range(1, 1001)])
        db.commit()


# -- verification, load, report ------------------------------------------------------------------


def verify(side: Side, protected: bool, issuer: Issuer, bearer: str, upstream: Upstream) -> str | None:
    """Why `side` does not do the measured work, or None."""
    path = upstream.path
    with httpx.Client(timeout=10) as http:
        ok = http.get(side.url + path, headers={"Authorization": f"Bearer {bearer}"})
        if ok.status_code != 200:
            return f"GET {path} with the token answered {ok.status_code}: {ok.text[:200]}"
        body = ok.json()
        if upstream.name == "sqlite" and (body.get("id"), body.get("title")) != (1, "note 1"):
            return f"GET {path} answered another row: {body}"
        if upstream.name == "demo" and (body.get("subject"), body.get("kind")) != ("bench-user", "user"):
            return f"GET {path} answered another caller: {body}"
        if not protected:
            return None
        if upstream.name == "sqlite" and body.get("viewer") != "bench-user":
            return f"the upstream did not receive the token's sub: {body}"
        missing = http.get(side.url + path)
        if missing.status_code != 401:
            return f"without a token: {missing.status_code}, not 401"
        scoped = http.get(side.url + path, headers={"Authorization": f"Bearer {issuer.mint(scope='other')}"})
        if scoped.status_code != 403:
            return f"a token without {SCOPE}: {scoped.status_code}, not 403"
    return None


def load(url: str, headers: dict[str, str], args: argparse.Namespace, amount: int) -> LoadResult:
    return autocannon(url, body="", headers=headers, connections=args.connections, duration=0,
                      method="GET", amount=amount)


def measure(side: Side, url: str, headers: dict[str, str], args: argparse.Namespace, amount: int) -> LoadResult:
    before = side.cpu_now()
    result = load(url, headers, args, amount)
    after = side.cpu_now()
    side.runs.append(result)
    side.cpu.append({name: after[name] - before[name] for name in after})
    cpu = sum(side.cpu[-1].values())
    split = ", ".join(f"{name} {value:.2f}" for name, value in side.cpu[-1].items())
    print(f"  {side.name:<34} {result.per_second:>9.0f}/s  {result.ok / cpu if cpu else 0:>8.0f}/CPU-s  "
          f"p50 {result.latency_p50:.1f} ms  p99 {result.latency_p99:.1f} ms  (CPU s: {split})"
          + (f"  FAILED {result.non_2xx} non-2xx, {result.errors} errors, {result.timeouts} timeouts"
             if result.non_2xx or result.errors or result.timeouts else ""))
    return result


def summary(side: Side) -> tuple[float, float]:
    """Median requests/s and median requests per CPU-second of the side's serving processes."""
    rates = [r.per_second for r in side.runs]
    per_cpu = [r.ok / sum(c.values()) if sum(c.values()) else 0.0 for r, c in zip(side.runs, side.cpu, strict=True)]
    return median(rates), median(per_cpu)


def paired(numerator: Side, denominator: Side) -> float:
    """The median of the per-round ratios (each round's two runs were taken minutes apart at most)."""
    return median([n.per_second / d.per_second if d.per_second else 0.0
                   for n, d in zip(numerator.runs, denominator.runs, strict=True)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run through nginx")
    parser.add_argument("--decisions", type=int, default=20_000, help="requests per run of /decide alone")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of the same load per side first")
    parser.add_argument("--upstream", choices=sorted(UPSTREAMS), default="sqlite",
                        help="sqlite: one row read (cheap, the worst case for the ratio); demo: the demo API")
    args = parser.parse_args()
    chosen = UPSTREAMS[args.upstream]
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the order alternates; medians)")
    if not Path(NGINX).exists():
        sys.exit("bench: nginx is needed (Debian: nginx)")
    ensure_node_packages()

    failed = False
    issuer = Issuer()
    with tempfile.TemporaryDirectory(prefix="bastion-edge-bench-") as temp, serve_issuer(issuer), \
            contextlib.ExitStack() as processes:
        work = Path(temp)
        script = work / "upstream.py"
        upstream_port = free_port()
        if chosen.name == "sqlite":
            make_database(work / "notes.db")
            script.write_text(UPSTREAM)
            argv = [sys.executable, str(script), str(upstream_port), str(work / "notes.db")]
            ready = f"http://127.0.0.1:{upstream_port}/notes/1"
        else:
            script.write_text(DEMO_UPSTREAM)
            jwks = issuer.documents()["/jwks"].decode()
            argv = [sys.executable, str(script), str(upstream_port), issuer.url, AUDIENCE, jwks]
            ready = f"http://127.0.0.1:{upstream_port}/health"
        upstream = start(argv, work / "upstream.log", ready)
        processes.callback(stop, upstream)

        sides: list[Side] = []
        decisions: list[Side] = []
        for name, protected, cache in (("(a) unprotected", False, 0), ("(b) bastion edge", True, 0),
                                       ("(c) bastion edge, cache 60 s", True, 60)):
            listen, decision = free_port(), free_port()
            directory = work / name.split()[0].strip("()")
            policy = write_policy(directory, issuer, listen, decision, upstream_port, cache, chosen.route)
            serving = {"upstream": upstream}
            if protected:
                edge = start_edge(policy, decision)
                processes.callback(stop, edge)
                serving["decision"] = edge
                decisions.append(Side(f"/decide alone, cache {'60 s' if cache else 'off'}",
                                      f"http://127.0.0.1:{decision}/decide", {"decision": edge}))
            nginx = start_nginx(render_nginx(policy, directory, protected=protected), listen)
            processes.callback(stop, nginx)
            serving["nginx"] = nginx
            sides.append(Side(name, f"http://127.0.0.1:{listen}", serving))

        bearer = issuer.mint()
        headers = {"Authorization": f"Bearer {bearer}"}
        for side, protected in zip(sides, (False, True, True), strict=True):
            problem = verify(side, protected, issuer, bearer, chosen)
            if problem is not None:
                print(f"bench: {side.name} failed verification: {problem}", file=sys.stderr)
                return 2
        asked = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": chosen.path, "X-Forwarded-Host": "api.bench.test",
                 "X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1", "X-Bastion-Status-Via": "403",
                 "Authorization": f"Bearer {bearer}"}
        for side in decisions:
            answer = httpx.get(side.url, headers=asked, timeout=10)
            if answer.status_code != 200 or answer.headers.get("x-bastion-sub") != "bench-user":
                print(f"bench: {side.name} failed verification: {answer.status_code} {answer.text[:200]}",
                      file=sys.stderr)
                return 2

        print(f"upstream: {chosen.description}")
        print(f"load generator: autocannon, {args.connections} connections, {args.requests} requests per run "
              f"({args.decisions} per /decide run); CPU = every serving process's tree (nginx master and "
              "workers, decision service, upstream), never the load generator's")
        print(f"warm-up: {args.warmup:.0f} s per side")
        for side in sides:
            autocannon(side.url + chosen.path, body="", headers=headers, connections=args.connections,
                       duration=args.warmup, method="GET")
        for side in decisions:
            autocannon(side.url, body="", headers=asked, connections=args.connections,
                       duration=max(1.0, args.warmup / 2), method="GET")

        for round_ in range(args.rounds):
            print(f"round {round_ + 1}")
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                failed |= measure(side, side.url + chosen.path, headers, args, args.requests).ok != args.requests
            for side in decisions if round_ % 2 == 0 else decisions[::-1]:
                failed |= measure(side, side.url, asked, args, args.decisions).ok != args.decisions

        (a, b, c), (alone_off, alone_on) = sides, decisions
        print("\nmedians                              requests/s   per CPU-s")
        for side in (*sides, *decisions):
            rate, per_cpu = summary(side)
            print(f"  {side.name:<34} {rate:>9.0f}   {per_cpu:>9.0f}")
        print(f"\nprotected / unprotected, (b)/(a): {paired(b, a):.2f}x requests/s "
              f"({summary(b)[1] / summary(a)[1]:.2f}x per CPU-s)   target >= 0.75x")
        print(f"with the decision cache ON (off by default), (c)/(a): {paired(c, a):.2f}x requests/s "
              f"({summary(c)[1] / summary(a)[1]:.2f}x per CPU-s)")
        print(f"decision service alone: {summary(alone_off)[0]:.0f} decisions/s (cache off), "
              f"{summary(alone_on)[0]:.0f} (cache on)")
    if failed:
        print("bench: some requests were not 2xx (see FAILED above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
