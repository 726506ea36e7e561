"""Load for fault tests: a production `bastion serve` on private services, its people and
clients, and loops of real requests whose every answer is kept with when it was sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bastion.config import Settings
from bastion.identity import NewUser, users
from bastion.server import admin, open_context
from tests._live import LiveServer, free_port, start_server
from tests.conftest import make_settings, prepare
from tests.server._people import Person

PASSWORD = "a long and unusual passphrase"
CALLBACK = "https://spa.example/callback"


@dataclass(frozen=True)
class Cast:
    """Who takes part: a user, a public client with codes and refresh tokens, a confidential
    client with client credentials, and a resource server that may introspect their tokens."""

    user: Person
    spa: dict[str, Any]
    service: dict[str, Any]
    resource_server: dict[str, Any]


async def _cast(settings: Settings, issuer: str) -> Cast:
    """Registered in process, as the CLI does (a CLI process per client would take seconds each)."""
    ctx = await open_context(settings)
    try:
        user = await users.create_user(
            ctx.database, ctx.people.passwords, NewUser(username="bob", email="bob@example.com"), PASSWORD
        )

        async def client(**fields: Any) -> dict[str, Any]:
            return await admin.create_client(ctx.database, ctx.hasher, admin.NewClient(**fields))

        return Cast(
            Person(user.sub, "bob", PASSWORD),
            await client(name="SPA", grants=("authorization_code", "refresh_token"), auth_method="none",
                         redirect_uris=(CALLBACK,), scope=("openid", "profile", "email", "offline_access", "read")),
            await client(name="service", grants=("client_credentials",), scope=("read",)),
            await client(name="rs", grants=("client_credentials",), introspect=True, audiences=(issuer + "/api",)),
        )
    finally:
        await ctx.close()


async def production_server(
    tmp_path: Path, database_url: str, redis_url: str | None, **env: str
) -> tuple[LiveServer, Cast]:
    """`bastion serve` in production mode (PostgreSQL, keys made beforehand) on these services,
    and the people and clients it serves."""
    settings = make_settings(database_url, tmp_path, redis_url=redis_url)
    await prepare(settings)
    port = free_port()
    cast = await _cast(settings, f"http://127.0.0.1:{port}")
    server = await asyncio.to_thread(start_server, settings, tmp_path, port=port, **env)
    return server, cast


@dataclass(frozen=True)
class Answer:
    """One request of a loop: what it was, when it was sent and answered, and the answer (status
    0: no answer within the client's timeout, or the connection failed)."""

    kind: str
    sent: float
    answered: float
    status: int
    body: dict[str, Any]
    retry_after: str | None


@dataclass
class Load:
    """Loops of requests running until `stop()`; every answer in `answers`."""

    http: httpx.AsyncClient
    answers: list[Answer] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _running: bool = True

    async def request(self, kind: str, send: Callable[[], Awaitable[httpx.Response]]) -> Answer:
        sent = time.monotonic()
        try:
            response = await send()
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            status, retry_after = response.status_code, response.headers.get("retry-after")
        except httpx.HTTPError as exc:
            status, body, retry_after = 0, {"exception": type(exc).__name__}, None
        answer = Answer(kind, sent, time.monotonic(), status, body, retry_after)
        self.answers.append(answer)
        return answer

    def loop(self, step: Callable[[], Awaitable[Any]]) -> None:
        """Run `step` again and again until `stop()` (a short pause after a refusal)."""

        async def run() -> None:
            while self._running:
                await step()
                await asyncio.sleep(0.01)

        self._tasks.append(asyncio.create_task(run()))

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*self._tasks)

    def of(self, kind: str) -> list[Answer]:
        return [a for a in self.answers if a.kind == kind]
