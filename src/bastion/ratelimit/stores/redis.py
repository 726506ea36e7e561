"""Counters in Redis, shared by every process: one EVALSHA round trip per decision.

Scripts run by their SHA1 (EVALSHA); a server that does not know one (after a restart or
SCRIPT FLUSH) answers NOSCRIPT, and the store loads the script and runs it again, so NOSCRIPT
never reaches the caller.
Connection errors become `StoreUnavailable`, which the limiter turns into the policy's
fail-open or fail-closed answer.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from bastion.ratelimit.algorithms import Outcome, fixed_window, gcra, sliding_log, sliding_window, token_bucket
from bastion.ratelimit.policy import Policy
from bastion.ratelimit.stores import _lua
from bastion.ratelimit.stores._base import StoreUnavailable

Decider = Callable[[str, int, bool, int], Awaitable[Outcome]]
"""Decide `(key, cost, consume, now)` for one policy; `now` in microseconds."""


class RedisStore:
    """A store in Redis.

    Args:
        url_or_client: a `redis://` URL, or a `redis.asyncio.Redis` the caller owns.
        key_prefix: prepended to every key, so deployments and tests do not collide.
        timeout: socket timeout in seconds when built from a URL; a decision never waits
            longer than about twice this before the failure mode answers.
        expiry_margin: seconds keys outlive the moment their state stops mattering, for
            callers whose clocks lag Redis's (decisions use the callers' clocks).
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        key_prefix: str = "bastion:rl:",
        timeout: float = 0.5,
        expiry_margin: float = 1.0,
    ) -> None:
        if isinstance(url_or_client, str):
            # One immediate retry so a connection killed by a Redis restart is replaced at
            # once; no backoff, because a waiting request is worse than the failure mode.
            self._client = aioredis.from_url(
                url_or_client, socket_timeout=timeout, socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
            )
            self._owned = True
        else:
            self._client = url_or_client
            self._owned = False
        self._prefix = key_prefix
        self._margin = _int(max(0, round(expiry_margin * 1000)))  # milliseconds
        self._deciders: dict[str, tuple[Policy, Decider]] = {}
        self._spare: list[Connection] = []
        client = self._client
        # A plain client on a connection pool is driven one level down (see `_evalsha`);
        # anything else (a single-connection client, a subclass) through execute_command.
        # (A cluster client has no connection_pool.)
        pool = getattr(client, "connection_pool", None)
        plain = type(client) is aioredis.Redis and not client.single_connection_client
        self._pool: ConnectionPool | None = pool if plain and type(pool) is ConnectionPool else None
        self._encode: Callable[[str], bytes] = (
            str.encode if self._pool is None
            else self._pool.get_encoder().encode  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        )

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    @property
    def prefix(self) -> str:
        return self._prefix

    async def aclose(self) -> None:
        pool, spare = self._pool, self._spare
        while pool is not None and spare:
            await pool.release(spare.pop())
        if self._owned:
            await self._client.aclose()

    async def decide(
        self, policy: Policy, key: str, *, cost: int, consume: bool, now: int
    ) -> Outcome:
        return await self.decider(policy)(key, cost, consume, now)

    def decider(self, policy: Policy) -> Decider:
        """The coroutine function deciding for `policy`, built once; the limiter keeps it."""
        known = self._deciders.get(policy.name)
        if known is not None and (known[0] is policy or known[0] == policy):
            return known[1]
        decide = _BUILDERS[policy.algorithm](self, policy)
        self._deciders[policy.name] = (policy, decide)
        return decide

    def _call(self, name: str, keys: int, args: int, constants: tuple[int, ...]) -> _Call:
        """One policy's EVALSHA of script `name` with `keys` keys and `args` per-call
        arguments; the policy's `constants` (and the expiry margin) come last, packed once."""
        source = _SCRIPTS[name]
        sha = hashlib.sha1(source.encode()).hexdigest().encode()  # noqa: S324 - EVALSHA's name
        tail = (*[_int(value) for value in constants], self._margin)
        return _Call(sha, source, keys, args, tail)

    async def _run(self, call: _Call, keys: list[str], args: list[bytes]) -> Any:
        """Run `call` with these keys and leading arguments: one round trip; the script is
        loaded again when the server has forgotten it."""
        try:
            try:
                return await self._evalsha(call, keys, args)
            except NoScriptError:
                # A restarted or flushed Redis has forgotten the script: load it, run it again.
                await self._client.script_load(call.source)
                return await self._evalsha(call, keys, args)
        except (RedisError, OSError, TimeoutError) as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}: {error}") from error

    async def _evalsha(self, call: _Call, keys: list[str], args: list[bytes]) -> Any:
        pool = self._pool
        if pool is None:
            # execute_command rather than evalsha: one layer less; redis-py leaves it untyped.
            execute: Callable[..., Awaitable[Any]] = self._client.execute_command
            return await execute(_EVALSHA, call.sha, call.keys, *keys, *args, *call.tail)
        # What execute_command does for a plain pooled client (a connection from the pool,
        # its retry policy, disconnect on a connection error), without its per-command
        # hooks and with the command packed here: half its cost, on every decision.
        encode = self._encode
        packed = b"".join([
            call.head, *[_bulk(encode(key)) for key in keys], *[_bulk(arg) for arg in args],
            call.packed_tail,
        ])
        # Connections this store has used stay with it between decisions (the pool still
        # counts them as in use); one that failed in any way goes back to the pool, whose next
        # checkout reconnects it or finds it healthy.
        spare = self._spare
        connection = spare.pop() if spare else await pool.get_connection()  # type: ignore[no-untyped-call]  # as above
        try:
            reply = await connection.retry.call_with_retry(
                lambda: _round_trip(connection, packed),
                lambda error, failures: connection.disconnect(error=error, failure_count=failures),
                with_failure_count=True,
            )
        except BaseException:
            await pool.release(connection)
            raise
        spare.append(connection)
        return reply


class _Call:
    """A script's EVALSHA for one policy: the command's header and constant tail, packed."""

    __slots__ = ("head", "keys", "packed_tail", "sha", "source", "tail")

    def __init__(
        self, sha: bytes, source: str, keys: int, args: int, tail: tuple[bytes, ...]
    ) -> None:
        self.sha, self.source, self.keys, self.tail = sha, source, keys, tail
        self.head = b"*%d\r\n%b%b%b" % (
            3 + keys + args + len(tail), _bulk(_EVALSHA), _bulk(sha), _bulk(b"%d" % keys)
        )
        self.packed_tail = b"".join(_bulk(arg) for arg in tail)


def _bulk(value: bytes) -> bytes:
    """One bulk string of the Redis protocol (RESP)."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


async def _round_trip(connection: Connection, packed: bytes) -> Any:
    await connection.send_packed_command(packed)
    return await connection.read_response(disable_decoding=True)


def _base(store: RedisStore, policy: Policy) -> str:
    # A hash tag keeps a policy's keys in one Redis Cluster slot (sliding_window uses two).
    return f"{store._prefix}{{{policy.name}:"


def _fixed(store: RedisStore, policy: Policy) -> Decider:
    run, base, limit = store._run, _base(store, policy), policy.limit
    call = store._call("fixed_window", 1, 2, (limit,))

    async def decide(key: str, cost: int, consume: bool, now: int) -> Outcome:
        start, end = policy.bounds(now)
        # The key names its window, so the TTL only collects garbage: keep it a window past
        # the end, so processes whose clocks lag (or an injected clock) still find the count.
        ttl_ms = (2 * end - start - now) // 1000 + 1
        reply: int = await run(
            call, [f"{base}{key}}}:{start}"], [_signed(cost, consume), b"%d" % ttl_ms]
        )
        allowed = reply >= 0  # the count after the decision, or -1 - count when refused
        return fixed_window.outcome(
            allowed, reply if allowed else -1 - reply, limit=limit, now=now, end=end
        )

    return decide


def _log(store: RedisStore, policy: Policy) -> Decider:
    run, base, limit, window = store._run, _base(store, policy), policy.limit, policy.window_us
    call = store._call("sliding_log", 1, 3, (window, limit))

    async def decide(key: str, cost: int, consume: bool, now: int) -> Outcome:
        allowed, count, kth, newest = (await run(
            call, [f"{base}{key}}}"],
            [b"%d" % now, _signed(cost, consume), f"{_nonce[0]}:{next(_serial)}".encode()],
        )).split()
        first, last = int(kth), int(newest)
        return sliding_log.outcome(
            allowed == b"1", int(count), None if first < 0 else first,
            None if last < 0 else last, limit=limit, cost=cost, window=window, now=now,
        )

    return decide


def _counter(store: RedisStore, policy: Policy) -> Decider:
    run, base, limit, window = store._run, _base(store, policy), policy.limit, policy.window_us
    call = store._call("sliding_window", 2, 2, (limit, window))

    async def decide(key: str, cost: int, consume: bool, now: int) -> Outcome:
        index, elapsed = divmod(now, window)
        at = f"{base}{key}}}:"
        allowed, prev, cur = (await run(
            call, [f"{at}{index}", f"{at}{index - 1}"],
            [_signed(cost, consume), b"%d" % elapsed],
        )).split()
        return sliding_window.outcome(
            allowed == b"1", int(prev), int(cur),
            limit=limit, cost=cost, window=window, elapsed=elapsed,
        )

    return decide


Report = Callable[[bool, int, int, int], Outcome]


def _signed_reply(store: RedisStore, policy: Policy, script: str, args: tuple[int, ...], report: Report) -> Decider:
    """A decider whose script answers one integer: the state after the decision, or -1 - state
    when refused; `report(allowed, state, cost, now)` makes the outcome the sans-I/O module would."""
    run, base = store._run, _base(store, policy)
    call = store._call(script, 1, 2, args)

    async def decide(key: str, cost: int, consume: bool, now: int) -> Outcome:
        reply: int = await run(call, [f"{base}{key}}}"], [b"%d" % now, _signed(cost, consume)])
        allowed = reply >= 0
        return report(allowed, reply if allowed else -1 - reply, cost, now)

    return decide


def _bucket(store: RedisStore, policy: Policy) -> Decider:
    capacity, limit, window = policy.capacity, policy.limit, policy.window_us

    def report(allowed: bool, level: int, cost: int, now: int) -> Outcome:
        return token_bucket.outcome(allowed, level, capacity=capacity, limit=limit, cost=cost, window=window)

    return _signed_reply(store, policy, "token_bucket", (capacity, limit, window), report)


def _gcra(store: RedisStore, policy: Policy) -> Decider:
    burst, interval = policy.capacity, policy.interval_us

    def report(allowed: bool, tat: int, cost: int, now: int) -> Outcome:
        return gcra.outcome(allowed, tat, burst=burst, cost=cost, interval=interval, now=now)

    return _signed_reply(store, policy, "gcra", (interval, burst), report)


def _int(value: int) -> bytes:
    """An argument encoded once, as redis-py would encode it on every call."""
    return str(value).encode()


_ONE, _MINUS_ONE = _int(1), _int(-1)


def _signed(cost: int, consume: bool) -> bytes:
    """The cost, negative for a peek: one argument where two would be encoded per call."""
    if cost == 1:
        return _ONE if consume else _MINUS_ONE
    return b"%d" % (cost if consume else -cost)


# Log members must be unique though their stamps are equal: a random prefix per process
# (drawn again in a forked child, which inherits the counter) and a counter.
_nonce = [secrets.token_hex(8)]
_serial = itertools.count()
os.register_at_fork(after_in_child=lambda: _nonce.__setitem__(0, secrets.token_hex(8)))
_EVALSHA = b"EVALSHA"
_SCRIPTS: Final = {
    "fixed_window": _lua.FIXED_WINDOW,
    "sliding_log": _lua.SLIDING_LOG,
    "sliding_window": _lua.SLIDING_WINDOW,
    "token_bucket": _lua.TOKEN_BUCKET,
    "gcra": _lua.GCRA,
}
_BUILDERS: Final[dict[str, Callable[[RedisStore, Policy], Decider]]] = {
    "fixed_window": _fixed,
    "sliding_log": _log,
    "sliding_window": _counter,
    "token_bucket": _bucket,
    "gcra": _gcra,
}
