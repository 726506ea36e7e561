"""SIGTERM under load, on SQLite and PostgreSQL: the listener closes at once (new connections are
refused), requests in flight (slow uploads among them) complete with 200, one that never
finishes is cut at `shutdown_drain_seconds`, the process exits within that bound, and no grant
is half written: every token answered is valid and each refresh-token family has exactly one
live token, the last one answered."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from bastion.server.issuance import token_hash
from bastion.store import Database, refresh_tokens
from tests._live import LiveServer, keep_session_cookie
from tests.server._load import Cast, Load, production_server
from tests.server._people import authorize, exchange, refresh

pytestmark = [pytest.mark.anyio, pytest.mark.server]

DRAIN = 4  # seconds: shutdown_drain_seconds of the server under test
MARGIN = 6  # seconds the process may take beyond the drain to close its pools and exit
CHAINS = 2


class SlowTokenRequest:
    """A client-credentials request on its own connection whose body arrives in two parts: the
    server has it in flight from the first byte until the second part is sent."""

    def __init__(self, port: int, cast: Cast) -> None:
        self.port = port
        self.body = b"grant_type=client_credentials&scope=read"
        self.auth = base64.b64encode(f"{cast.service['client_id']}:{cast.service['client_secret']}".encode()).decode()
        self.stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def begin(self) -> None:
        self.stream = await asyncio.open_connection("127.0.0.1", self.port)
        head = (
            f"POST /token HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAuthorization: Basic {self.auth}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(self.body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.stream[1].write(head.encode() + self.body[:10])
        await self.stream[1].drain()

    async def finish(self) -> tuple[int, dict[str, Any]]:
        assert self.stream is not None
        reader, writer = self.stream
        writer.write(self.body[10:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)

    def abandon(self) -> None:
        if self.stream is not None:
            self.stream[1].close()


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


def _valid(token: str, jwks: dict[str, Any], audience: str) -> bool:
    key = next(k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience=audience)
    return bool(claims["jti"])


async def _live_tokens(url: str, family: str) -> int:
    database = Database(url, pool_size=1)
    try:
        async with database.engine.connect() as conn:
            found = await conn.execute(
                text("SELECT count(*) FROM refresh_tokens WHERE family = :f AND rotated_at IS NULL"
                     " AND revoked_at IS NULL"), {"f": family})
            return int(found.scalar_one())
    finally:
        await database.dispose()


async def test_sigterm_drains_in_flight_requests_and_exits_within_the_drain_time(
    tmp_path: Path, db_url: str
) -> None:
    """In flight at SIGTERM: 200 (tokens valid); after it: connections refused; the process exits
    within shutdown_drain_seconds + margin; each refresh family has one live token, the last answered."""
    server, cast = await production_server(tmp_path, db_url, None, BASTION_SHUTDOWN_DRAIN_SECONDS=str(DRAIN))
    try:
        outcome = await _drain_under_load(server, cast)
    finally:
        server.stop()
    slow, refused, alive_after_sigterm, exited_after, returncode, load, chains, jwks = outcome

    assert [status for status, _ in slow] == [200, 200], slow
    assert refused
    assert alive_after_sigterm
    assert exited_after < DRAIN + MARGIN
    # uvicorn re-raises the SIGTERM it handled once it has shut down: the exit status says so.
    assert returncode in (0, -signal.SIGTERM)
    issued = [a.body["access_token"] for a in load.answers if a.status == 200]
    issued += [body["access_token"] for _, body in slow]
    assert all(_valid(token, jwks, server.url + "/api") for token in issued)
    assert not [a for a in load.answers if a.status not in (200, 0)], "a request got an error answer"
    async with _database(db_url) as database:
        rows = [await refresh_tokens.get(database, token_hash(token)) for token in chains]
    assert [(row.rotated_at, row.revoked_at) for row in rows if row] == [(None, None)] * CHAINS
    assert [await _live_tokens(db_url, row.family) for row in rows if row] == [1] * CHAINS


@asynccontextmanager
async def _database(url: str) -> AsyncIterator[Database]:
    database = Database(url, pool_size=1)
    try:
        yield database
    finally:
        await database.dispose()


async def _drain_under_load(server: LiveServer, cast: Cast) -> tuple[Any, ...]:
    port = int(server.url.rsplit(":", 1)[1])
    browser = httpx.AsyncClient(base_url=server.url, timeout=30)
    browser.event_hooks["response"] = [keep_session_cookie(browser)]
    async with browser, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        jwks = (await http.get("/jwks")).json()
        chains = []
        for user in (cast.user, *[None] * (CHAINS - 1)):
            code = await authorize(browser, cast.spa, user)
            chains.append((await exchange(http, cast.spa, code.params["code"], code.verifier)).json()["refresh_token"])
        load = Load(http)
        auth = (cast.service["client_id"], cast.service["client_secret"])

        async def client_credentials() -> None:
            await load.request("client_credentials", lambda: http.post(
                "/token", data={"grant_type": "client_credentials", "scope": "read"}, auth=auth))

        def chain(index: int) -> Any:
            async def step() -> None:
                answer = await load.request("refresh", lambda: refresh(http, cast.spa, chains[index]))
                if answer.status == 200:
                    chains[index] = answer.body["refresh_token"]
            return step

        for step in (client_credentials, client_credentials, *(chain(i) for i in range(CHAINS))):
            load.loop(step)
        slow = [SlowTokenRequest(port, cast) for _ in range(2)]
        stalled = SlowTokenRequest(port, cast)
        await asyncio.sleep(1)
        for request in (*slow, stalled):
            await request.begin()
        await asyncio.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        terminated = time.monotonic()
        await asyncio.sleep(0.7)
        refused = await _refused(port)
        await load.stop()
        alive = server.process.poll() is None
        answers = [await request.finish() for request in slow]
        returncode = await asyncio.to_thread(server.process.wait, DRAIN + MARGIN + 5)
        exited_after = time.monotonic() - terminated
        stalled.abandon()
    return answers, refused, alive, exited_after, returncode, load, chains, jwks
