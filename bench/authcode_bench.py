"""Authorization Code exchanges and refresh-token grants per second, Bastion against
node-oidc-provider; and complete browser logins per second at production Argon2id parameters.

    python3 dev.py run python bench/authcode_bench.py [--count 400] [--concurrency 16]
        [--login-seconds 15] [--postgres postgresql://postgres@127.0.0.1:5432/test]

1. Code exchanges/s and refresh grants/s. The browser step is not measured: each server is
   given `--count` codes and refresh tokens up front (Bastion: rows written through its store;
   oidc-provider: minted through its own models, `bench/node/authcode_server.mjs`). Both issue
   an ES256 JWT access token, an RS256 ID token and a rotated refresh token to a public client
   with PKCE S256. One load generator (Node, `bench/node/post_bodies.mjs`) exchanges them with
   `--concurrency` requests in flight, one server after the other. Bastion runs on SQLite
   (development mode) and, with `--postgres`, on PostgreSQL; oidc-provider on its in-memory adapter. Ratios are printed;
   the target is >= 1.0x on PostgreSQL.
2. Logins/s: authorize, login form (Argon2id m=19 MiB, t=2, p=1), consent (prompt=consent) and
   code exchange, by `--concurrency` virtual browsers (Node, `bench/node/logins.mjs`, over
   keep-alive connections as browsers do) on one Bastion worker, for `--login-seconds`, on
   SQLite and (with `--postgres`) on PostgreSQL. Target >= 30/s (Keycloak publishes 15 per vCPU).
3. While those logins saturate the hashing pool, the client_credentials token endpoint's latency
   is sampled and compared with its latency at rest: hashing runs off the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from _harness import NODE_DIR, Bastion, bastion_env, ensure_node_packages, free_port, start_bastion, start_node, stop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bastion.protocol.rfc7636 import s256_challenge
from bastion.store import Database, codes, refresh_tokens, transaction, users
from bastion.store.codes import AuthorizationCodeRow
from bastion.store.refresh_tokens import RefreshTokenRow
from bastion.store.users import UserRow

CALLBACK = "https://spa.bench.test/callback"
RESOURCE = "https://api.bench.test/"
SCOPE = "openid offline_access"
VERIFIER = "bench-verifier-" + "v" * 40
PASSWORD = "a long and unusual passphrase"  # noqa: S105 - the bench users' throwaway password


def _hash(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


async def seed_bastion(database_url: str, client_id: str, count: int) -> tuple[list[str], list[str]]:
    """Codes and refresh tokens for one user, written as the authorization flow would."""
    database = Database(database_url, pool_size=2)
    now = int(time.time())
    sub = secrets.token_urlsafe(16)
    code_values = [secrets.token_urlsafe(32) for _ in range(count)]
    refresh = [secrets.token_urlsafe(32) for _ in range(count)]
    async with transaction(database) as tx:
        await users.insert(
            tx,
            UserRow(
                sub=sub,
                username=f"bench-{sub[:6]}",
                email="",
                email_verified=False,
                display_name="bench",
                profile="{}",
                roles="",
                enabled=True,
                password_hash="x",  # noqa: S106 - never logs in: it only owns the seeded codes
                totp_secret=None,
                totp_last_step=None,
                created_at=now,
                updated_at=now,
            ),
        )
        common = {"client_id": client_id, "sub": sub, "scope": SCOPE, "sid": "bench", "auth_time": now, "amr": "pwd"}
        for code in code_values:
            await codes.insert(
                tx,
                AuthorizationCodeRow(
                    code_hash=_hash(code),
                    redirect_uri=CALLBACK,
                    nonce="n",
                    code_challenge=s256_challenge(VERIFIER),
                    acr="urn:bastion:acr:password",
                    created_at=now,
                    expires_at=now + 3600,
                    used_at=None,
                    access_jti=None,
                    access_exp=None,
                    refresh_family=None,
                    **common,
                ),
            )
        for token in refresh:
            await refresh_tokens.insert(
                tx,
                RefreshTokenRow(
                    token_hash=_hash(token),
                    family=secrets.token_urlsafe(16),
                    acr="urn:bastion:acr:password",
                    created_at=now,
                    expires_at=now + 86400,
                    family_expires_at=now + 86400,
                    rotated_at=None,
                    revoked_at=None,
                    access_jti=None,
                    access_exp=None,
                    **common,
                ),
            )
    await database.dispose()
    return code_values, refresh


async def drive(url: str, bodies: list[dict[str, str]], concurrency: int) -> tuple[float, int, int]:
    """POST every body to `url` once with `concurrency` in flight, from Node (bench/node/post_bodies.mjs)
    so that the load generator is neither Python nor the bottleneck; (seconds, 200s, others)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump([urlencode(body) for body in bodies], handle)
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            ["node", "post_bodies.mjs", url, handle.name, str(concurrency)],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(handle.name).unlink()  # noqa: ASYNC240 - a local temp file, before any load is measured
    data = json.loads(result.stdout.strip().splitlines()[-1])
    if data["bad"]:
        print(f"  {url}: {data['bad']} failed, first: {data['first_failure']}", file=sys.stderr)
    return float(data["seconds"]), int(data["ok"]), int(data["bad"])


def _code_body(client_id: str, code: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client_id,
        "code_verifier": VERIFIER,
    }


def _refresh_body(client_id: str, token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}


WARMUP = 40  # grants of each kind sent first and not measured: connections opened, statements prepared


async def measure_grants(
    token_url: str, client_id: str, codes: list[str], refresh: list[str], concurrency: int
) -> dict[str, float]:
    """Rates of code exchanges and refresh grants, after WARMUP of each (not measured)."""
    if codes:
        await drive(token_url, [_code_body(client_id, c) for c in codes[:WARMUP]], concurrency)
    if refresh:
        await drive(token_url, [_refresh_body(client_id, r) for r in refresh[:WARMUP]], concurrency)
    codes, refresh = codes[WARMUP:], refresh[WARMUP:]
    code_bodies = [_code_body(client_id, c) for c in codes]
    refresh_bodies = [_refresh_body(client_id, r) for r in refresh]
    rates = {"code_exchanges_per_s": 0.0, "refresh_grants_per_s": 0.0}
    if code_bodies:
        seconds, ok, _ = await drive(token_url, code_bodies, concurrency)
        rates["code_exchanges_per_s"] = ok / seconds
    if refresh_bodies:
        seconds, ok, _ = await drive(token_url, refresh_bodies, concurrency)
        rates["refresh_grants_per_s"] = ok / seconds
    return rates


def bastion_public_client(server: Bastion) -> str:
    client = server.create_client(
        "--name",
        "bench spa",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--auth-method",
        "none",
        "--redirect-uri",
        CALLBACK,
        "--scope",
        SCOPE + " profile email",
        "--audience",
        RESOURCE,
    )
    return str(client["client_id"])


def start_bastion_postgres(workdir: Path, url: str) -> Bastion:
    """A fresh, migrated PostgreSQL database with ES256 and RS256 keys, then `serve`."""
    import asyncpg

    workdir.mkdir(parents=True, exist_ok=True)
    name = "bastion_bench_authcode"

    async def recreate() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    settings = {
        "database_url": url.rsplit("/", 1)[0] + "/" + name,
        "key_encryption_key": "a" * 43,
        "client_secret_pepper": "bench-pepper",
        "key_prepublication": "0",
    }
    env = bastion_env(**settings)
    data_dir = workdir / "pg-data"
    for args in (["db", "upgrade"], ["keys", "rotate", "--alg", "ES256"], ["keys", "rotate", "--alg", "RS256"]):
        subprocess.run(
            [sys.executable, "-m", "bastion", *args, "--data-dir", str(data_dir)],
            env=env,
            check=True,
            capture_output=True,
        )
    port = free_port()
    return start_bastion(workdir, port=port, issuer=f"http://127.0.0.1:{port}", **settings)


def database_url_of(server: Bastion) -> str:
    url = server.env.get("BASTION_DATABASE_URL")
    if url:
        return url.replace("postgresql://", "postgresql+asyncpg://")
    return f"sqlite+aiosqlite:///{(server.data_dir / 'bastion.db').resolve()}"


# Logins


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


async def logins(
    server: Bastion, client_id: str, users: list[str], seconds: float, concurrency: int, auth: tuple[str, str]
) -> dict[str, float]:
    idle = await asyncio.to_thread(
        lambda: json.loads(
            subprocess.run(
                [sys.executable, __file__, "--sample-latency", json.dumps([server.url, *auth, 3])],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    )
    # The sampler runs in its own process: the login drivers' own CPU work must not delay it.
    sampler = asyncio.create_task(
        asyncio.to_thread(
            subprocess.run,
            [sys.executable, __file__, "--sample-latency", json.dumps([server.url, *auth, seconds * 0.8])],
            capture_output=True,
            text=True,
            check=True,
        )
    )
    driver = await asyncio.to_thread(
        subprocess.run,
        [
            "node",
            "logins.mjs",
            server.url,
            client_id,
            CALLBACK,
            ",".join(users),
            PASSWORD,
            str(seconds),
            str(concurrency),
        ],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    outcome = json.loads(driver.stdout.strip().splitlines()[-1])
    if outcome["failed"]:
        print(f"  logins: {outcome['failed']} failed, first: {outcome['first_failure']}", file=sys.stderr)
    done, failed, elapsed = int(outcome["done"]), int(outcome["failed"]), float(outcome["seconds"])
    busy = json.loads((await sampler).stdout)
    q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1] if len(xs) > 2 else float("nan")  # noqa: E731
    return {
        "logins_per_s": done / elapsed,
        "failed": failed,
        "token_p50_idle_ms": statistics.median(idle),
        "token_p99_idle_ms": q(idle, 99),
        "token_p50_busy_ms": statistics.median(busy),
        "token_p99_busy_ms": q(busy, 99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--login-seconds", type=float, default=15)
    parser.add_argument("--postgres", default="")
    # One JSON argument: a client secret may begin with "-", which argparse would take for an option.
    parser.add_argument("--sample-latency", metavar="JSON", help='["URL", "CLIENT_ID", "SECRET", SECONDS]')
    args = parser.parse_args()
    if args.sample_latency:
        url, client_id, secret, seconds = json.loads(args.sample_latency)
        print(json.dumps(asyncio.run(token_latencies(url, (client_id, secret), float(seconds)))))
        return 0
    ensure_node_packages()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="authcode-bench-") as tmp:
        workdir = Path(tmp)
        # node-oidc-provider, in-memory adapter: one fresh process per phase (its LRU holds 1000 entries).
        peer_count = min(args.count, 200) + WARMUP
        minted: dict[str, list[str]] = {}
        rates: dict[str, float] = {}
        for mode in ("codes", "refresh"):
            port = free_port()
            out = workdir / f"peer-{mode}.json"
            peer_config = {
                "port": port,
                "count": peer_count,
                "out": str(out),
                "resource": RESOURCE,
                "challenge": s256_challenge(VERIFIER),
                "mode": mode,
            }
            peer_env = {"BENCH_AUTHCODE": json.dumps(peer_config)}
            peer = start_node(
                "authcode_server.mjs", workdir, f"oidc-provider-{mode}", f"http://127.0.0.1:{port}/jwks", peer_env
            )
            try:
                minted = json.loads(out.read_text())
                measured = asyncio.run(
                    measure_grants(
                        f"http://127.0.0.1:{port}/token",
                        "spa",
                        minted["codes"],
                        minted["refresh_tokens"],
                        args.concurrency,
                    )
                )
            finally:
                stop(peer)
            key = "code_exchanges_per_s" if mode == "codes" else "refresh_grants_per_s"
            rates[key] = measured[key]
        results["oidc-provider (memory)"] = rates
        targets = [("bastion (sqlite)", lambda: start_bastion(workdir / "sqlite"))]
        if args.postgres:
            targets.append(("bastion (postgresql)", lambda: start_bastion_postgres(workdir / "pg", args.postgres)))
        for name, start in targets:
            (workdir / "sqlite").mkdir(exist_ok=True)
            server = start()
            try:
                client_id = bastion_public_client(server)
                codes, refresh = asyncio.run(seed_bastion(database_url_of(server), client_id, args.count + WARMUP))
                results[name] = asyncio.run(
                    measure_grants(server.url + "/token", client_id, codes, refresh, args.concurrency)
                )
                if args.login_seconds > 0:
                    users = []
                    for index in range(4):
                        username = f"login{index}"
                        subprocess.run(
                            [
                                sys.executable,
                                "-m",
                                "bastion",
                                "users",
                                "create",
                                "--username",
                                username,
                                "--password-stdin",
                                "--data-dir",
                                str(server.data_dir),
                            ],
                            env=server.env,
                            input=PASSWORD + "\n",
                            text=True,
                            check=True,
                            capture_output=True,
                        )
                        users.append(username)
                    machine = server.create_client("--name", "m", "--grant", "client_credentials", "--scope", "read")
                    auth = (machine["client_id"], machine["client_secret"])
                    results["logins " + name] = asyncio.run(
                        logins(server, client_id, users, args.login_seconds, args.concurrency, auth)
                    )
            finally:
                stop(server.process)
    peer_rates = results["oidc-provider (memory)"]
    print(f"{'server':<24} {'code exchanges/s':>18} {'refresh grants/s':>18} {'ratio code':>11} {'ratio refresh':>14}")
    for name, figures in results.items():
        if name.startswith("logins"):
            continue
        ratio_code = figures["code_exchanges_per_s"] / peer_rates["code_exchanges_per_s"]
        ratio_refresh = figures["refresh_grants_per_s"] / peer_rates["refresh_grants_per_s"]
        print(
            f"{name:<24} {figures['code_exchanges_per_s']:>18.1f} {figures['refresh_grants_per_s']:>18.1f} "
            f"{ratio_code:>10.2f}x {ratio_refresh:>13.2f}x"
        )
    for name, lg in results.items():
        if not name.startswith("logins"):
            continue
        print(
            f"{name.removeprefix('logins ')}: complete logins/s (one worker, Argon2id m=19MiB t=2 p=1): "
            f"{lg['logins_per_s']:.1f} (target >= 30; failed {int(lg['failed'])})"
        )
        print(
            f"client_credentials latency at rest p50 {lg['token_p50_idle_ms']:.1f} ms "
            f"p99 {lg['token_p99_idle_ms']:.1f} ms; "
            f"during the login flood p50 {lg['token_p50_busy_ms']:.1f} ms p99 {lg['token_p99_busy_ms']:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
