"""The Redis revocation channel, end to end: a real `bastion serve` (SQLite and PostgreSQL)
publishes `{"jti", "exp"}` on `bastion:revocations` with the key write, and the guard's
`RedisRevocationSubscriber` refuses the token within a second; it catches up from the keys when
it starts and whenever its connection is re-established, and falls back to the database feed
while its (private) Redis is down. Tests that cut or kill Redis use a private redis-server.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bastion.guard import Authenticator, Denylist, InvalidToken, IssuerConfig
from bastion.guard.revocation import (
    REDIS_CHANNEL,
    REDIS_PREFIX,
    HttpRevocationPoller,
    RedisRevocationSubscriber,
)
from bastion.server.denylist import REVOCATION_CHANNEL, REVOKED_KEY, AccessTokenDenylist
from bastion.store import Database, revocations
from tests import _services
from tests._live import LiveServer, free_port
from tests.conftest import DEFAULT_AUDIENCE, make_settings, prepare
from tests.guard._issuer import REVOCATION_CLIENT, running_issuer
from tests.interop._peers import OIDC_DISCOVERY, audience, client_credentials_token, create_reader
from tests.ratelimit._redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

# The bound (issue 13, item 3): a revocation is refused by a guard within a second.
WITHIN = 1.0
# Generous bounds for what the issue does not time (starting, noticing an outage, reconnecting).
SETTLE = 20.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Any:
    """The server of this module publishes revocations in the shared Redis."""
    return make_settings(db_url, tmp_path, redis_url=_services.need_redis())


@pytest.fixture
async def shared_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(_services.need_redis())
    yield client
    await client.aclose()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may cut off or kill."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


async def wait_until(what: str, condition: Callable[[], bool], within: float = SETTLE) -> float:
    """Wait (polling every 10 ms) until `condition()`; how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def jti_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def revoke(server: LiveServer, client: dict[str, Any], token: str) -> None:
    response = httpx.post(
        server.url + "/revoke", data={"token": token}, auth=(client["client_id"], client["client_secret"]), timeout=30
    )
    assert response.status_code == 200, response.text


async def refusal(auth: Authenticator, token: str) -> str | None:
    """Why the guard refuses `token` (None: it accepts it)."""
    try:
        await auth.authenticate_bearer(token)
    except InvalidToken as error:
        return error.detail
    return None


def test_the_guard_listens_where_the_server_publishes() -> None:
    """The guard's channel and key prefix are the ones the server writes."""
    assert REDIS_CHANNEL == REVOCATION_CHANNEL == "bastion:revocations"
    assert REVOKED_KEY.format(jti="x") == REDIS_PREFIX + "x"


@pytest.mark.server
async def test_the_server_publishes_jti_and_exp(live_server: LiveServer, shared_redis: Redis) -> None:
    """A revocation is published on bastion:revocations as {"jti", "exp"}, the token's own."""
    client = create_reader(live_server)
    token = client_credentials_token(live_server, client)
    claims = jwt.decode(token, options={"verify_signature": False})
    pubsub = shared_redis.pubsub()
    await pubsub.subscribe(REDIS_CHANNEL)
    try:
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        await asyncio.to_thread(revoke, live_server, client, token)
        deadline = time.monotonic() + SETTLE
        while True:  # other tests may publish on the shared channel too
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            assert time.monotonic() < deadline, "the revocation was not published"
            if message is not None and json.loads(message["data"])["jti"] == claims["jti"]:
                break
    finally:
        await pubsub.aclose()

    assert json.loads(message["data"]) == {"jti": claims["jti"], "exp": claims["exp"]}


@pytest.mark.server
async def test_a_revocation_is_refused_within_a_second(live_server: LiveServer, shared_redis: Redis) -> None:
    """A token revoked at the server is refused by a subscribed guard within one second."""
    client = create_reader(live_server)
    token = client_credentials_token(live_server, client)
    denylist = Denylist()
    subscriber = RedisRevocationSubscriber(shared_redis, denylist=denylist)
    auth = Authenticator(
        [IssuerConfig(live_server.url + OIDC_DISCOVERY, audience(live_server))],
        denylist=denylist,
        revocation_feeds=[subscriber],
    )
    await auth.start()
    try:
        await wait_until("the subscriber to listen", lambda: subscriber.listening)
        assert await refusal(auth, token) is None

        await asyncio.to_thread(revoke, live_server, client, token)
        await wait_until("the revocation to reach the guard", lambda: jti_of(token) in denylist, within=WITHIN)

        assert await refusal(auth, token) == "revoked"
        assert not subscriber.using_fallback
    finally:
        await auth.aclose()


@pytest.mark.server
async def test_given_a_redis_url_the_guard_follows_revocations_by_default(live_server: LiveServer) -> None:
    """An Authenticator given only the server's Redis URL (no feed wired by hand) listens to the
    revocation channel and refuses a revoked token within a second (issue 14, item 3)."""
    client = create_reader(live_server)
    token = client_credentials_token(live_server, client)
    auth = Authenticator(
        [IssuerConfig(live_server.url + OIDC_DISCOVERY, audience(live_server))], redis_url=_services.need_redis()
    )
    assert auth.follows_revocations
    await auth.start()
    try:
        [subscriber] = auth.revocation_feeds
        assert isinstance(subscriber, RedisRevocationSubscriber)
        await wait_until("the subscriber to listen", lambda: subscriber.listening)
        assert await refusal(auth, token) is None

        await asyncio.to_thread(revoke, live_server, client, token)
        await wait_until("the revocation to reach the guard", lambda: jti_of(token) in auth.denylist, within=WITHIN)

        assert await refusal(auth, token) == "revoked"
    finally:
        await auth.aclose()


@pytest.mark.server
async def test_revocations_made_before_it_starts_are_caught_up(live_server: LiveServer, shared_redis: Redis) -> None:
    """A subscriber started after three revocations knows all three once it listens (SCAN of the keys)."""
    client = create_reader(live_server)
    tokens = [client_credentials_token(live_server, client) for _ in range(3)]
    for token in tokens:
        revoke(live_server, client, token)
    subscriber = RedisRevocationSubscriber(shared_redis, denylist=Denylist())
    task = asyncio.create_task(subscriber.run())
    try:
        await wait_until("the subscriber to listen", lambda: subscriber.listening)

        assert {jti_of(token) for token in tokens} <= set(subscriber.denylist.ids)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.server
async def test_the_channel_and_the_database_feed_agree(live_server: LiveServer, shared_redis: Redis) -> None:
    """The revocations a subscriber learns are the ones the database feed lists (Redis against the database)."""
    prefix = f"test:{uuid.uuid4().hex}:"
    client = create_reader(live_server)
    reader = live_server.create_client(
        "--name", "guard", "--grant", "client_credentials", "--introspect", "--audience", DEFAULT_AUDIENCE
    )
    tokens = [client_credentials_token(live_server, client) for _ in range(4)]
    subscriber = RedisRevocationSubscriber(shared_redis, denylist=Denylist(), channel=prefix + "none")
    task = asyncio.create_task(subscriber.run())
    try:
        await wait_until("the subscriber to listen", lambda: subscriber.listening)
        for token in tokens:
            await asyncio.to_thread(revoke, live_server, client, token)
        # This subscriber listens elsewhere: what it knows came from the keys, as after any reconnect.
        await subscriber.poll()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    from_database = Denylist()
    async with httpx.AsyncClient() as http:
        await HttpRevocationPoller(
            live_server.url + "/revocations",
            client_id=reader["client_id"],
            client_secret=reader["client_secret"],
            denylist=from_database,
            http=http,
        ).poll()

    ours = {jti_of(token) for token in tokens}
    assert ours <= set(from_database.ids)
    assert ours <= set(subscriber.denylist.ids)
    # The database of this test's server holds only its own revocations; Redis is shared.
    assert set(from_database.ids) == ours


def operations_example() -> dict[str, Any]:
    """The Python block of docs/operations.md, "Several workers", run as a module would be."""
    page = (_services.ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = page.split("\n## Several workers\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "operations_example"}
    exec(compile(code, "docs/operations.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


@pytest.mark.server
async def test_the_operations_guide_example_refuses_a_revocation(live_server: LiveServer) -> None:
    """The guard built as docs/operations.md shows listens, and refuses a revoked token within a second."""
    client = create_reader(live_server)
    rs = live_server.create_client(
        "--name", "guard", "--grant", "client_credentials", "--introspect", "--audience", DEFAULT_AUDIENCE
    )
    auth = operations_example()["authenticator"](
        live_server.url, audience(live_server), _services.need_redis(), rs["client_id"], rs["client_secret"]
    )
    subscriber = auth.revocation_feeds[0]
    token = client_credentials_token(live_server, client)
    await auth.start()
    try:
        await wait_until("the subscriber to listen", lambda: subscriber.listening)
        assert await refusal(auth, token) is None

        await asyncio.to_thread(revoke, live_server, client, token)
        await wait_until("the revocation to reach the guard", lambda: jti_of(token) in auth.denylist, within=WITHIN)

        assert await refusal(auth, token) == "revoked"
    finally:
        await auth.aclose()
        await subscriber.redis.aclose()
        await subscriber.fallback.http.aclose()


def database_feed(issuer: str, denylist: Denylist, http: httpx.AsyncClient) -> HttpRevocationPoller:
    """The test issuer's revocation list, read as the resource server it registers."""
    return HttpRevocationPoller(
        issuer + "/revocations",
        client_id=REVOCATION_CLIENT[0],
        client_secret=REVOCATION_CLIENT[1],
        denylist=denylist,
        http=http,
    )


async def test_it_catches_up_when_its_connection_is_cut(private_redis: RedisServer) -> None:
    """A revocation whose message a subscriber missed is found in the keys once its client reconnects."""
    redis = Redis.from_url(private_redis.url)
    subscriber = RedisRevocationSubscriber(redis, denylist=Denylist())
    task = asyncio.create_task(subscriber.run())
    try:
        await wait_until("the subscriber to listen", lambda: subscriber.listening)
        # Written as the server writes it, but with its message lost (as while disconnected).
        await redis.set(REDIS_PREFIX + "missed", str(int(time.time()) + 600), ex=600)
        assert "missed" not in subscriber.denylist

        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await wait_until("the missed revocation", lambda: "missed" in subscriber.denylist)
        await wait_until("the subscriber to listen again", lambda: subscriber.listening)
        await redis.publish(REDIS_CHANNEL, json.dumps({"jti": "after", "exp": int(time.time()) + 600}))
        await wait_until("a revocation published after", lambda: "after" in subscriber.denylist, within=WITHIN)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()


async def test_it_falls_back_while_redis_is_down_and_listens_when_it_returns(private_redis: RedisServer) -> None:
    """Redis killed: the database feed is polled instead; Redis back: the subscriber listens again."""
    redis = Redis.from_url(private_redis.url, retry=Retry(NoBackoff(), 0))
    exp = int(time.time()) + 600
    with running_issuer() as issuer:
        async with httpx.AsyncClient() as http:
            denylist = Denylist()
            fallback = database_feed(issuer.issuer, denylist, http)
            subscriber = RedisRevocationSubscriber(
                redis, denylist=denylist, fallback=fallback, fallback_interval=0.1, backoff=(0.1, 0.5)
            )
            task = asyncio.create_task(subscriber.run())
            try:
                await wait_until("the subscriber to listen", lambda: subscriber.listening)
                assert not subscriber.using_fallback

                private_redis.kill()
                await wait_until("the fallback", lambda: subscriber.using_fallback)
                assert not subscriber.listening
                issuer.revoke("while-down", exp)
                await wait_until("a revocation from the database feed", lambda: "while-down" in denylist)

                private_redis.start()
                await wait_until("the subscriber to listen again", lambda: subscriber.listening)
                assert not subscriber.using_fallback
                await redis.publish(REDIS_CHANNEL, json.dumps({"jti": "after", "exp": exp}))
                await wait_until("a revocation published after", lambda: "after" in denylist, within=WITHIN)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await redis.aclose()


async def test_while_listening_it_still_finds_revocations_only_in_the_database(private_redis: RedisServer) -> None:
    """A revocation the server could write only to its database (a Redis error at that
    instant) reaches a guard whose subscription never dropped, within `reconcile_interval`."""
    redis = Redis.from_url(private_redis.url, retry=Retry(NoBackoff(), 0))
    exp = int(time.time()) + 600
    with running_issuer() as issuer:
        async with httpx.AsyncClient() as http:
            denylist = Denylist()
            fallback = database_feed(issuer.issuer, denylist, http)
            subscriber = RedisRevocationSubscriber(redis, denylist=denylist, fallback=fallback, reconcile_interval=0.5)
            task = asyncio.create_task(subscriber.run())
            try:
                await wait_until("the subscriber to listen", lambda: subscriber.listening)
                issuer.revoke("database-only", exp)  # recorded, never published
                await wait_until("the reconciliation", lambda: "database-only" in denylist, within=WITHIN + 1.0)
                assert subscriber.listening
                assert not subscriber.using_fallback
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await redis.aclose()


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'["jti", 1]', id="not-an-object"),
        pytest.param(b'{"exp": 1}', id="no-jti"),
        pytest.param(b'{"jti": 7, "exp": 1}', id="jti-not-a-string"),
        pytest.param(b'{"jti": "x", "exp": "1"}', id="exp-a-string"),
        pytest.param(b'{"jti": "x", "exp": true}', id="exp-a-boolean"),
    ],
)
async def test_a_malformed_message_is_ignored(message: bytes, shared_redis: Redis) -> None:
    """A message that is not {"jti": str, "exp": int} adds nothing, and the next good one is applied."""
    channel = f"test:{uuid.uuid4().hex}:revocations"
    subscriber = RedisRevocationSubscriber(shared_redis, denylist=Denylist(), channel=channel, prefix=channel + ":")
    task = asyncio.create_task(subscriber.run())
    try:
        await wait_until("the subscriber to listen", lambda: subscriber.listening)
        await shared_redis.publish(channel, message)
        await shared_redis.publish(channel, json.dumps({"jti": "good", "exp": int(time.time()) + 60}))
        await wait_until("the good message", lambda: "good" in subscriber.denylist)

        assert set(subscriber.denylist.ids) == {"good"}
        assert subscriber.listening
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_server_records_a_revocation_while_redis_is_down(db_url: str, tmp_path: Path) -> None:
    """With Redis unreachable a revocation is still recorded, and is_revoked answers from the database."""
    settings = make_settings(db_url, tmp_path)
    await prepare(settings)
    database = Database(settings.resolved_database_url, pool_size=1)
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", retry=Retry(NoBackoff(), 0))
    denylist = AccessTokenDenylist(database, unreachable)
    try:
        await denylist.revoke("down-jti", "a-client", int(time.time()) + 600)

        assert await denylist.is_revoked("down-jti")
        assert not await denylist.is_revoked("other-jti")
        listed = await revocations.page(database, (0, ""), int(time.time()))
        assert [row.jti for row in listed] == ["down-jti"]
    finally:
        await denylist.aclose()
        await database.dispose()
