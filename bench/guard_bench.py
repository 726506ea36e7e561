"""The guard's validator against PyJWT's `jwt.decode`, and a protected endpoint against an open one.

    python3 dev.py run python bench/guard_bench.py [--tokens 1000] [--draws 20000] [--rounds 5]
        [--duration 5] [--connections 20] [--skip-http]

1. Validation throughput on the same tokens and keys (ES256 and RS256): PyJWT gets the same
   prepared public key object, `algorithms=[alg]`, the audience and the issuer. Cache off:
   every one of `--tokens` distinct tokens once per round, guard with its cache disabled.
   Cache on: `--draws` tokens drawn Zipf-distributed (s=1.1) from the same set, a realistic
   hot-token mix; PyJWT has no cache, so it verifies every draw.
2. Requests per second of one uvicorn worker (a separate process) serving the same handler,
   once with no guard at all and once behind the guard's middleware, both sent the same valid
   token, driven by autocannon (bench/node), alternating which goes first in each round.
3. The guard middleware's own CPU cost per request with a verified token, in-process (no HTTP
   server), with `RequestGuard.check_cached` (the synchronous fast path) and without it (every
   request awaits `check`), alternating in chunks: what the fast twin saves.

Prints each figure, the median of the rounds, and the ratios against the targets: cache off
>= 1.0x PyJWT, cache on >= 10x, protected >= 0.85x of unprotected (the median of per-round
paired ratios), plus requests per CPU-second of each server process, a figure that other load
on a shared machine does not distort, and the fast path's saving in microseconds of CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bastion.guard import BearerTokenValidator, TrustedIssuer, keyset_from_jwks

ISSUER = "https://issuer.bench"
AUDIENCE = "https://api.bench"


def make_keys() -> dict[str, tuple[Any, dict[str, Any]]]:
    """alg -> (private key, public JWK)."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True) | {"kid": "es", "alg": "ES256", "use": "sig"}
    rsa_jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {"kid": "rs", "alg": "RS256", "use": "sig"}
    return {"ES256": (ec_key, ec_jwk), "RS256": (rsa_key, rsa_jwk)}


def mint(private_key: Any, alg: str, kid: str, count: int) -> list[str]:
    """`count` distinct RFC 9068-shaped access tokens."""
    now = int(time.time())
    return [
        jwt.encode(
            {
                "iss": ISSUER,
                "sub": f"user-{i}",
                "aud": AUDIENCE,
                "exp": now + 3600,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "client_id": "bench-client",
                "scope": "notes:read notes:write",
            },
            private_key,
            algorithm=alg,
            headers={"typ": "at+jwt", "kid": kid},
        )
        for i in range(count)
    ]


def guard_validator(jwks: dict[str, Any], cache_size: int) -> BearerTokenValidator:
    validator = BearerTokenValidator(cache_size=cache_size)
    validator.trust(
        TrustedIssuer(ISSUER, AUDIENCE),
        keyset_from_jwks(jwks, fetched_at=time.time(), max_age=float("inf")),
    )
    return validator


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def interleaved(
    first: Callable[[str], Any], second: Callable[[str], Any], tokens: Sequence[str], chunk: int = 100
) -> tuple[float, float]:
    """Rates of two validators over the same tokens, alternating in chunks so that load noise
    on a shared machine hits both alike."""
    spent = [0.0, 0.0]
    for start in range(0, len(tokens), chunk):
        part = tokens[start : start + chunk]
        order = (0, 1) if (start // chunk) % 2 == 0 else (1, 0)
        for which in order:
            function = first if which == 0 else second
            began = time.perf_counter()
            for token in part:
                function(token)
            spent[which] += time.perf_counter() - began
    return len(tokens) / spent[0], len(tokens) / spent[1]


def zipf_draws(tokens: Sequence[str], draws: int, s: float = 1.1, seed: int = 7) -> list[str]:
    weights = [1 / (rank**s) for rank in range(1, len(tokens) + 1)]
    return random.Random(seed).choices(tokens, weights=weights, k=draws)


def bench_validation(args: argparse.Namespace) -> dict[str, float]:
    ratios: dict[str, float] = {}
    for alg, (private_key, jwk) in make_keys().items():
        tokens = mint(private_key, alg, jwk["kid"], args.tokens)
        public_key = private_key.public_key()
        jwks = {"keys": [jwk]}

        def pyjwt(token: str, public_key: Any = public_key, alg: str = alg) -> Any:
            return jwt.decode(token, public_key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER, leeway=30)

        draws = zipf_draws(tokens, args.draws)
        off_guard, off_pyjwt, on_guard, on_pyjwt = [], [], [], []
        for _ in range(args.rounds):
            cold = guard_validator(jwks, cache_size=0)
            g, p = interleaved(cold.validate, pyjwt, tokens)
            off_guard.append(g)
            off_pyjwt.append(p)
            warm = guard_validator(jwks, cache_size=10_000)
            g, p = interleaved(warm.validate, pyjwt, draws)
            on_guard.append(g)
            on_pyjwt.append(p)
        for label, guard_rates, pyjwt_rates, target in (
            ("cache off", off_guard, off_pyjwt, 1.0),
            ("cache on (Zipf)", on_guard, on_pyjwt, 10.0),
        ):
            g, p = median(guard_rates), median(pyjwt_rates)
            ratio = g / p
            ratios[f"{alg} {label}"] = ratio
            verdict = "ok" if ratio >= target else "BELOW TARGET"
            print(
                f"{alg} {label:16} guard {g:>11,.0f}/s  PyJWT {p:>9,.0f}/s  "
                f"ratio {ratio:5.2f}x (target >= {target}x) {verdict}"
            )
    return ratios


# ---- protected vs unprotected endpoint -------------------------------------------------------

SERVER = """
import json, os, sys, time
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from bastion.guard import PUBLIC, Authenticator, RequestGuard, TrustedIssuer, require_scopes
from bastion.guard.middleware import GuardMiddleware, RouteRule

jwks = json.loads(os.environ["GUARD_BENCH_JWKS"])

async def handler(request):
    return JSONResponse({"hello": "world"})

if sys.argv[2] == "protected":
    auth = Authenticator(static_issuers=[(TrustedIssuer(os.environ["GUARD_BENCH_ISSUER"],
                                                       os.environ["GUARD_BENCH_AUDIENCE"]), jwks)])
    rules = [RouteRule("/notes", require_scopes("notes:read"))]
    middleware = [Middleware(GuardMiddleware, guard=RequestGuard(auth), rules=rules)]
else:
    middleware = []  # the same app with no guard at all: the honest baseline
app = Starlette(routes=[Route("/notes", handler)], middleware=middleware)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def bench_http(args: argparse.Namespace) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import autocannon, cpu_seconds, ensure_node_packages, free_port, stop, wait_until_ready

    ensure_node_packages()
    private_key, jwk = make_keys()["ES256"]
    token = mint(private_key, "ES256", "es", 1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {
            "GUARD_BENCH_JWKS": json.dumps({"keys": [jwk]}),
            "GUARD_BENCH_ISSUER": ISSUER,
            "GUARD_BENCH_AUDIENCE": AUDIENCE,
        }
        processes, cases, pids = [], {}, {}
        try:
            for name in ("unprotected", "protected"):
                port = free_port()
                log = Path(tmp) / f"{name}.log"
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        [sys.executable, "-c", SERVER, str(port), name],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                processes.append(process)
                pids[name] = process.pid
                wait_until_ready(f"http://127.0.0.1:{port}/notes", process, log)
                # Both get the same Authorization header: only the guard differs.
                cases[name] = (f"http://127.0.0.1:{port}/notes", {"Authorization": f"Bearer {token}"})
            for url, headers in cases.values():  # warm-up
                autocannon(url, body="", headers=headers, connections=args.connections, duration=1, method="GET")
            rates: dict[str, list[float]] = {name: [] for name in cases}
            per_cpu: dict[str, list[float]] = {name: [] for name in cases}
            paired: list[float] = []
            for round_ in range(args.rounds):
                order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
                this_round: dict[str, float] = {}
                for name in order:
                    url, headers = cases[name]
                    cpu_before = cpu_seconds(pids[name])
                    result = autocannon(
                        url,
                        body="",
                        headers=headers,
                        connections=args.connections,
                        duration=args.duration,
                        method="GET",
                    )
                    if result.non_2xx or result.errors:
                        print(f"{name}: {result.non_2xx} non-2xx, {result.errors} errors", file=sys.stderr)
                    rates[name].append(result.ok / result.seconds)
                    this_round[name] = result.ok / result.seconds
                    cpu = cpu_seconds(pids[name]) - cpu_before
                    if cpu > 0:
                        per_cpu[name].append(result.ok / cpu)
                paired.append(this_round["protected"] / this_round["unprotected"])
        finally:
            for process in processes:
                stop(process)
    open_rate, protected_rate = median(rates["unprotected"]), median(rates["protected"])
    # The median of per-round ratios: each pair ran back to back, so load from other processes
    # on a shared machine affects both sides of a pair alike.
    ratio = median(paired)
    verdict = "ok" if ratio >= 0.85 else "BELOW TARGET"
    print(
        f"HTTP unprotected {open_rate:>9,.0f} req/s  protected {protected_rate:>9,.0f} req/s  "
        f"ratio {ratio:4.2f}x (median of {len(paired)} paired rounds; target >= 0.85x) {verdict}"
    )
    if per_cpu["unprotected"] and per_cpu["protected"]:
        # Requests per CPU-second of the server process: immune to other load on the machine.
        open_cpu, protected_cpu = median(per_cpu["unprotected"]), median(per_cpu["protected"])
        print(
            f"HTTP per server CPU-second: unprotected {open_cpu:>9,.0f}  protected {protected_cpu:>9,.0f}  "
            f"ratio {protected_cpu / open_cpu:4.2f}x"
        )
    return ratio


# ---- the middleware's fast path ----------------------------------------------------------------


async def _middleware_cost(app: Any, headers: list[tuple[bytes, bytes]], requests: int) -> float:
    """CPU microseconds per request through `app` (process time: other load does not count)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    began = time.process_time()
    for _ in range(requests):
        scope = {"type": "http", "method": "GET", "path": "/notes", "headers": headers, "query_string": b""}
        await app(scope, receive, send)
    return (time.process_time() - began) / requests * 1e6


def bench_fast_path(args: argparse.Namespace) -> float:
    import asyncio

    from bastion.guard import Authenticator, RequestGuard, require_scopes
    from bastion.guard.middleware import GuardMiddleware, RouteRule

    class WithoutFastPath(RequestGuard):
        def check_cached(self, requirement: Any, scope: Any) -> None:
            return None  # every request awaits `check`

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    private_key, jwk = make_keys()["ES256"]
    token = mint(private_key, "ES256", "es", 1)[0]
    headers = [(b"host", b"127.0.0.1"), (b"accept", b"*/*"), (b"authorization", f"Bearer {token}".encode())]
    apps = {}
    for name, kind in (("fast path", RequestGuard), ("check only", WithoutFastPath)):
        authenticator = Authenticator(static_issuers=[(TrustedIssuer(ISSUER, AUDIENCE), {"keys": [jwk]})])
        rules = [RouteRule("/notes", require_scopes("notes:read"))]
        apps[name] = GuardMiddleware(handler, guard=kind(authenticator), rules=rules)

    async def run() -> dict[str, list[float]]:
        costs: dict[str, list[float]] = {name: [] for name in apps}
        for app in apps.values():
            await _middleware_cost(app, headers, 1000)  # verifies the token once, warms up
        for chunk in range(20 * args.rounds):
            order = list(apps) if chunk % 2 == 0 else list(reversed(apps))
            for name in order:
                costs[name].append(await _middleware_cost(apps[name], headers, 2000))
        return costs

    costs = asyncio.run(run())
    fast, slow = median(costs["fast path"]), median(costs["check only"])
    print(
        f"middleware CPU per cached-token request: fast path {fast:5.2f} us  check only {slow:5.2f} us  "
        f"saved {slow - fast:4.2f} us (median of {len(costs['fast path'])} alternating chunks)"
    )
    return slow - fast


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    bench_validation(args)
    bench_fast_path(args)
    if not args.skip_http:
        bench_http(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
