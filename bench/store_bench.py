"""CPU microseconds per call of the store's hot statements, in process, on SQLite and PostgreSQL.

    python3 dev.py run python bench/store_bench.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
        [--calls 200] [--inner 3] [--rounds 5] [--baseline "PYTHON ADAPTER.py"]

What is measured: `time.process_time()` around N calls (every thread of the process, so
aiosqlite's worker thread counts; the PostgreSQL server's own CPU does not), divided by N: the
client-side cost of one call, which is what a server worker spends per statement. Each round is
a fresh process on a fresh database: migrate, seed rows with plain Core inserts, warm every call
up, then `--inner` timed batches of `--calls` calls each; the round's figure is the median batch.
The printed figure is the median over `--rounds` rounds.

The calls, as the token endpoint and the login pages make them:
  code+user read        the code and its user, one statement (authorization_code grant)
  spend code+successor  the conditional UPDATE and the refresh token it buys (one statement on PG)
  refresh+user read     the refresh token and its user, one statement (refresh_token grant)
  rotate+successor      the conditional UPDATE and the successor token (one statement on PG)
  session+request read  the browser session and its pending request, one statement (every page)
  user+consent read     the user and their consent for the client, one statement (advance)
  save session+request  a new browser session with its pending request, one transaction (authorize)
  save code+consent     the consent merged, the code stored, its request ended: one transaction

`--baseline CMD` compares with another implementation of the same calls: CMD (a Python and an
adapter script, split on spaces) is run as `CMD --round ...` in turn with this checkout's own
rounds, the order alternating, and must print one round's JSON like `--round` does here. An
adapter defines a class with the methods of `ThisStore` and passes it to `run_round`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CALLS = (
    "code+user read",
    "spend code+successor",
    "refresh+user read",
    "rotate+successor",
    "session+request read",
    "user+consent read",
    "save session+request",
    "save code+consent",
)
WARMUP = 50
NOW = int(time.time())
SUB, CLIENT = "bench-sub", "bench-client"


class ThisStore:
    """The calls through this checkout's store modules (rows go in as dicts, built before timing)."""

    def __init__(self) -> None:
        from bastion import store
        from bastion.store import codes, consents, pending_requests, refresh_tokens, sessions

        self.store, self.codes, self.consents = store, codes, consents
        self.pending_requests, self.refresh_tokens, self.sessions = pending_requests, refresh_tokens, sessions

    def open(self, url: str) -> Any:
        return self.store.Database(url, pool_size=4)

    def refresh_token(self, values: dict[str, Any]) -> Any:
        return self.refresh_tokens.RefreshTokenRow(**values)

    def session(self, values: dict[str, Any]) -> Any:
        return self.sessions.BrowserSessionRow(**values)

    def request(self, values: dict[str, Any]) -> Any:
        return self.pending_requests.AuthorizationRequestRow(**values, kind="authorization", user_code=None)

    def code(self, values: dict[str, Any]) -> Any:
        return self.codes.AuthorizationCodeRow(**values)

    async def code_with_user(self, db: Any, code_hash: str) -> Any:
        return await self.codes.with_user(db, code_hash)

    async def spend_code(self, db: Any, code_hash: str, successor: Any) -> bool:
        return await self.codes.spend(
            db, code_hash, NOW, access_jti="jti", access_exp=NOW + 300, family=successor.family, refresh=successor
        )

    async def refresh_with_user(self, db: Any, token_hash: str) -> Any:
        return await self.refresh_tokens.with_user(db, token_hash)

    async def rotate_refresh(self, db: Any, token_hash: str, successor: Any) -> bool:
        # The spend, the successor and the spent token's user (what a refresh grant needs).
        spent = self.refresh_tokens.Successor(successor.token_hash, successor.expires_at, "jti", NOW + 300)
        return await self.refresh_tokens.rotate(db, token_hash, successor.client_id, NOW, spent) is not None

    async def session_with_request(self, db: Any, id_hash: str, request_id: str) -> Any:
        return await self.sessions.get_with_request(db, id_hash, request_id, NOW)

    async def user_with_consent(self, db: Any, sub: str, client_id: str) -> Any:
        return await self.consents.user_and_consent(db, sub, client_id)

    async def save_session(self, db: Any, session: Any, request: Any) -> None:
        await self.sessions.save(db, session, new_request=request)

    async def save_code(self, db: Any, code: Any, pending_id: str, consent: tuple[str, ...]) -> None:
        # What the authorization endpoint does when the user has just approved (issue_code).
        async with self.store.transaction(db) as tx:
            await self.consents.merge(tx, code.sub, code.client_id, consent, NOW)
            await self.codes.insert(tx, code)
            await self.pending_requests.end(tx, pending_id)


def _code(code_hash: str) -> dict[str, Any]:
    return {
        "code_hash": code_hash,
        "client_id": CLIENT,
        "sub": SUB,
        "redirect_uri": "https://rp.bench.test/cb",
        "scope": "openid offline_access",
        "nonce": "n",
        "code_challenge": "c" * 43,
        "sid": "sid",
        "auth_time": NOW,
        "amr": "pwd",
        "acr": "urn:bastion:acr:password",
        "created_at": NOW,
        "expires_at": NOW + 3600,
        "used_at": None,
        "access_jti": None,
        "access_exp": None,
        "refresh_family": None,
    }


def _refresh(token_hash: str) -> dict[str, Any]:
    return {
        "token_hash": token_hash,
        "family": secrets.token_hex(8),
        "client_id": CLIENT,
        "sub": SUB,
        "scope": "openid offline_access",
        "sid": "sid",
        "auth_time": NOW,
        "amr": "pwd",
        "acr": "urn:bastion:acr:password",
        "created_at": NOW,
        "expires_at": NOW + 3600,
        "family_expires_at": NOW + 86400,
        "rotated_at": None,
        "revoked_at": None,
        "access_jti": "jti",
        "access_exp": NOW + 300,
    }


def _session(id_hash: str) -> dict[str, Any]:
    return {
        "id_hash": id_hash,
        "sid": secrets.token_hex(8),
        "sub": SUB,
        "stage": "authenticated",
        "amr": "pwd",
        "auth_time": NOW,
        "csrf_token": "csrf",
        "created_at": NOW,
        "last_seen_at": NOW,
        "expires_at": NOW + 3600,
    }


def _request(request_id: str, session_hash: str) -> dict[str, Any]:
    return {
        "id": request_id,
        "session_hash": session_hash,
        "client_id": CLIENT,
        "redirect_uri": "https://rp.bench.test/cb",
        "scope": "openid profile",
        "state": "state",
        "nonce": "n",
        "code_challenge": "c" * 43,
        "prompt": "consent",
        "max_age": None,
        "login_hint": None,
        "created_at": NOW,
        "expires_at": NOW + 3600,
        "acr_values": None,
    }


def _user() -> dict[str, Any]:
    return {
        "sub": SUB,
        "username": "bench",
        "email": "bench@example.test",
        "email_verified": True,
        "display_name": "Bench",
        "profile": "{}",
        "roles": "",
        "enabled": True,
        "password_hash": "x",
        "totp_secret": None,
        "totp_last_step": None,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _client() -> dict[str, Any]:
    return {
        "client_id": CLIENT,
        "name": "bench",
        "client_type": "public",
        "auth_method": "none",
        "grant_types": "authorization_code refresh_token",
        "scopes": "",
        "audiences": "",
        "redirect_uris": "https://rp.bench.test/cb",
        "token_lifetime": None,
        "introspect": False,
        "enabled": True,
        "jwks": None,
        "jwks_uri": None,
        "token_endpoint_audience": False,
        "created_at": NOW,
        "updated_at": NOW,
    }


async def _seed(database: Any, count: int) -> None:
    """Rows every implementation reads alike, written with Core inserts into the migrated tables."""
    from sqlalchemy import MetaData, Table, insert

    rows = {
        "users": [_user()],
        "clients": [_client()],
        "authorization_codes": [_code(f"code-{i}") for i in range(count)] + [_code("read")],
        "refresh_tokens": [_refresh(f"refresh-{i}") for i in range(count)] + [_refresh("read")],
        "browser_sessions": [_session("read")],
        "authorization_requests": [_request("read", "read")],
        "consents": [{"sub": SUB, "client_id": CLIENT, "scopes": "openid", "granted_at": NOW}],
    }
    async with database.engine.begin() as conn:
        for name, values in rows.items():
            table = await conn.run_sync(lambda sync, name=name: Table(name, MetaData(), autoload_with=sync))
            await conn.execute(insert(table), values)


async def _timed(calls: list[Callable[[], Awaitable[Any]]]) -> float:
    start = time.process_time()
    for call in calls:
        await call()
    return (time.process_time() - start) / len(calls) * 1e6


async def _measure(store: Any, db: Any, n: int, inner: int) -> dict[str, float]:
    """For each call: a warm-up, then `inner` timed batches of `n` calls; the median batch, in us."""
    total = WARMUP + n * inner
    successors = [store.refresh_token(_refresh(f"successor-{i}")) for i in range(2 * total)]
    sessions = [store.session(_session(f"session-{i}")) for i in range(total)]
    requests = [store.request(_request(f"request-{i}", f"session-{i}")) for i in range(total)]
    codes = [store.code(_code(f"issued-{i}")) for i in range(total)]
    consent = ("openid", "profile")
    batches: dict[str, Callable[[int], Callable[[], Awaitable[Any]]]] = {
        "code+user read": lambda i: lambda: store.code_with_user(db, "read"),
        "spend code+successor": lambda i: lambda: store.spend_code(db, f"code-{i}", successors[i]),
        "refresh+user read": lambda i: lambda: store.refresh_with_user(db, "read"),
        "rotate+successor": lambda i: lambda: store.rotate_refresh(db, f"refresh-{i}", successors[total + i]),
        "session+request read": lambda i: lambda: store.session_with_request(db, "read", "read"),
        "user+consent read": lambda i: lambda: store.user_with_consent(db, SUB, CLIENT),
        "save session+request": lambda i: lambda: store.save_session(db, sessions[i], requests[i]),
        "save code+consent": lambda i: lambda: store.save_code(db, codes[i], f"request-{i}", consent),
    }
    figures = {}
    for name in CALLS:
        make = batches[name]
        await _timed([make(i) for i in range(WARMUP)])
        times = [await _timed([make(WARMUP + b * n + i) for i in range(n)]) for b in range(inner)]
        figures[name] = statistics.median(times)
    return figures


async def _round(store: Any, postgres: str, n: int, inner: int) -> dict[str, dict[str, float]]:
    results = {}
    name = f"bastion_store_bench_{secrets.token_hex(4)}"  # one database per round process
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")]
        if postgres:
            await _postgres(postgres, name, create=True)
            targets.append(("postgresql", postgres.rsplit("/", 1)[0] + "/" + name))
        try:
            for kind, url in targets:
                database = store.open(url.replace("postgresql://", "postgresql+asyncpg://"))
                try:
                    await database.upgrade()
                    await _seed(database, WARMUP + n * inner)
                    results[kind] = await _measure(store, database, n, inner)
                finally:
                    await database.dispose()
        finally:
            if postgres:
                await _postgres(postgres, name, create=False)
    return results


async def _postgres(url: str, name: str, *, create: bool) -> None:
    """Drop the round's database and, with `create`, make it afresh."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def run_round(store: Any) -> None:
    """Entry point of one round (this checkout's `--round`, or a baseline adapter's): print its JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--round", action="store_true")
    parser.add_argument("--postgres", default="")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--inner", type=int, default=3)
    args, _ = parser.parse_known_args()
    print(json.dumps(asyncio.run(_round(store, args.postgres, args.calls, args.inner))))


def _one(command: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    argv = [*command, "--round", "--postgres", args.postgres, "--calls", str(args.calls), "--inner", str(args.inner)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _spread(figures: list[float]) -> str:
    return f"{statistics.median(figures):.0f} [{min(figures):.0f}-{max(figures):.0f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round", action="store_true", help="run one round in this process and print its JSON")
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL whose server may create a database")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="", help="command running another implementation's round")
    args = parser.parse_args()
    if args.round:
        run_round(ThisStore())
        return 0
    sides = {"this": [sys.executable, str(Path(__file__).resolve())]}
    if args.baseline:
        sides["baseline"] = shlex.split(args.baseline)
    figures: dict[str, list[dict[str, dict[str, float]]]] = {side: [] for side in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            figures[side].append(_one(sides[side], args))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    for kind in figures["this"][0]:
        print(f"\n{kind}: CPU us per call, median of {args.rounds} rounds [lowest-highest round]")
        print(f"{'call':<22}{'this':>16}" + (f"{'baseline':>18}{'ratio':>8}" if args.baseline else ""))
        for name in CALLS:
            line = f"{name:<22}{_spread([f[kind][name] for f in figures['this']]):>16}"
            if args.baseline:
                base = [f[kind][name] for f in figures["baseline"]]
                ratio = statistics.median(f[kind][name] for f in figures["this"]) / statistics.median(base)
                line += f"{_spread(base):>18}{ratio:>8.2f}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
