"""A refresh whose rotation PostgreSQL committed but whose answer was lost (the connection broke
between the commit and its reply): the server answers 503, and the client's retry with the same
token is answered with tokens, not taken for reuse (`server.unanswered`). Anything else that
presents a spent token still revokes its family.

The break is made by a relay between the server and a private PostgreSQL that, once armed,
holds every reply until it has seen the rotation's row (the presented token's hash) and the
ReadyForQuery after it (the commit done), then closes both sides without passing them on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bastion.server.unanswered import UnansweredRotations
from tests._live import free_port, keep_session_cookie
from tests._private_services import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests._services import need_redis
from tests.server._load import Cast, production_server
from tests.server._people import authorize, exchange, refresh

__all__ = ["private_postgres", "private_redis"]  # fixtures used below

pytestmark = [pytest.mark.anyio, pytest.mark.server]

READY_FOR_QUERY = b"Z\x00\x00\x00\x05"  # PostgreSQL's ReadyForQuery: type, length 5, then the status byte


class CommitThenCut:
    """A TCP relay to PostgreSQL; `arm(marker)` makes it cut the connection whose reply carries
    `marker`, after the server's ReadyForQuery, passing none of that reply on."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.marker: bytes | None = None
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CommitThenCut:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def arm(self, marker: bytes) -> None:
        self.marker = marker

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        upstream = asyncio.ensure_future(self._pipe(client_reader, server_writer))
        downstream = asyncio.ensure_future(self._replies(server_reader, client_writer))
        for task in (upstream, downstream):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (client_writer, server_writer):
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tail, withheld = b"", b""
        while data := await reader.read(65536):
            marker = self.marker
            if marker is not None and not withheld:
                seen = tail + data
                at = seen.find(marker)
                if at >= 0:
                    withheld = seen[at:]  # the rotation's row: from here on nothing passes
                else:
                    tail = seen[-len(marker):]
            elif withheld:
                withheld += data
            if withheld:
                if READY_FOR_QUERY in withheld:  # the reply is complete: the rotation is committed
                    self.marker, self.cuts = None, self.cuts + 1
                    return
                continue
            writer.write(data)
            await writer.drain()


@pytest.fixture(params=["memory", "redis"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> AsyncIterator[tuple[str, Cast, CommitThenCut]]:
    """A production server reaching its PostgreSQL through the relay: one worker with the record
    in memory, or two workers sharing it in Redis."""
    redis_url = private_redis.url if request.param == "redis" else None
    async with CommitThenCut(private_postgres.port) as relay:
        relayed = private_postgres.async_url.replace(f":{private_postgres.port}/", f":{relay.port}/")
        env = {"BASTION_DATABASE_URL": relayed, "BASTION_KEY_CACHE_SECONDS": "10"}
        if redis_url is not None:
            env["BASTION_WORKERS"] = "2"
        server, cast = await production_server(tmp_path, private_postgres.async_url, redis_url, **env)
        try:
            yield server.url, cast, relay
        finally:
            server.stop()


async def _first_refresh_token(url: str, cast: Cast) -> str:
    spa = cast.spa
    browser = httpx.AsyncClient(base_url=url, timeout=20)
    browser.event_hooks["response"] = [keep_session_cookie(browser)]
    async with browser:
        outcome = await authorize(browser, spa, cast.user)
        answer = await exchange(browser, spa, outcome.params["code"], outcome.verifier)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["refresh_token"])


async def test_a_retry_after_a_committed_but_unanswered_rotation_is_answered(
    served: tuple[str, Cast, CommitThenCut]
) -> None:
    url, cast, relay = served
    spa = cast.spa
    token = await _first_refresh_token(url, cast)
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        relay.arm(hashlib.sha256(token.encode()).hexdigest().encode())
        lost = await refresh(http, spa, token)
        assert relay.cuts == 1, "the relay never saw the rotation's reply"
        assert (lost.status_code, lost.json()["error"], lost.headers["retry-after"]) == (
            503, "temporarily_unavailable", "2"
        )

        retried = await refresh(http, spa, token)  # the client retries, as told
        assert retried.status_code == 200, retried.text
        successor = retried.json()["refresh_token"]
        assert successor != token
        assert retried.json()["access_token"]

        onwards = await refresh(http, spa, successor)
        assert onwards.status_code == 200, onwards.text

        # The record is taken once: the same token again is reuse, and revokes the family.
        replayed = await refresh(http, spa, token)
        assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")
        after = await refresh(http, spa, onwards.json()["refresh_token"])
        assert (after.status_code, after.json()["error"]) == (400, "invalid_grant")


async def test_a_spent_token_without_a_failed_rotation_still_revokes_its_family(
    served: tuple[str, Cast, CommitThenCut]
) -> None:
    url, cast, _relay = served
    spa = cast.spa
    token = await _first_refresh_token(url, cast)
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        first = await refresh(http, spa, token)
        assert first.status_code == 200, first.text
        reused = await refresh(http, spa, token)
        assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
        successor = await refresh(http, spa, first.json()["refresh_token"])
        assert (successor.status_code, successor.json()["error"]) == (400, "invalid_grant")


@pytest.fixture(params=["memory", "redis"])
async def records(request: pytest.FixtureRequest) -> AsyncIterator[tuple[UnansweredRotations, UnansweredRotations]]:
    """Two processes' records: separate in memory, shared through Redis."""
    if request.param == "memory":
        yield UnansweredRotations(None, 60), UnansweredRotations(None, 60)
        return
    from redis.asyncio import Redis

    url = need_redis()
    first, second = Redis.from_url(url), Redis.from_url(url)
    try:
        yield UnansweredRotations(first, 60), UnansweredRotations(second, 60)
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_record_is_taken_once(records: tuple[UnansweredRotations, UnansweredRotations]) -> None:
    mine, _theirs = records
    token = hashlib.sha256(b"token-" + free_port().to_bytes(4, "big")).hexdigest()
    assert await mine.take(token) is None
    await mine.note(token, "successor-hash")
    assert await mine.take(token) == "successor-hash"
    assert await mine.take(token) is None


async def test_a_record_reaches_another_process_only_through_redis(
    request: pytest.FixtureRequest, records: tuple[UnansweredRotations, UnansweredRotations]
) -> None:
    mine, theirs = records
    token = hashlib.sha256(b"shared-" + free_port().to_bytes(4, "big")).hexdigest()
    await mine.note(token, "successor-hash")
    shared = "redis" in request.node.callspec.id
    assert await theirs.take(token) == ("successor-hash" if shared else None)
    # Taken there, it is gone here too (Redis first), or still here (memory only).
    assert await mine.take(token) == (None if shared else "successor-hash")


async def test_a_record_outlives_a_redis_outage_in_its_process(private_redis: PrivateRedis) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(private_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        record = UnansweredRotations(redis, 60)
        await asyncio.to_thread(private_redis.kill)
        await record.note("a" * 64, "successor-hash")  # Redis away: kept here, not raised
        assert await record.take("a" * 64) == "successor-hash"
    finally:
        await redis.aclose()
