"""Rate-limit and load-shedding benchmarks; printed as ratios, never part of the test run.

    python3 dev.py run python bench/ratelimit_bench.py            # everything
    python3 dev.py run python bench/ratelimit_bench.py decisions  # decisions/s vs `limits`
    python3 dev.py run python bench/ratelimit_bench.py shedding   # latency with/without shedding
    python3 dev.py run python bench/ratelimit_bench.py twins      # what each fast twin is worth

decisions: for each algorithm, `RateLimiter.hit` on MemoryStore and RedisStore against the
`limits` library's equivalent async strategy (memory storage; Redis storage on redis-py) in the
same run, in interleaved batches; the best batch of each counts (the machine may be shared).
`vs+stats` compares with `limits` hit + get_window_stats, which is what it takes there to know
what a Decision carries (remaining, reset). Redis round trips per decision (`rtt`) are counted
on the client connection. `limits` 5.8 has no token bucket or GCRA: those rows compare with its fixed window,
its cheapest strategy, and say so.

twins: CPU nanoseconds per decision of each fast twin and of what it stands in for, interleaved
in one process, medians: the memory store's inlined admitted path against the same algorithm
run only through its sans-I/O module (`tests/ratelimit/_reference.py`, which the tests hold
equal to it), and the limiter's synchronous memory path against its general awaited path.

shedding: a real uvicorn process serving a Starlette app whose handler does 5 ms of CPU work in
slices (so concurrent requests share the CPU, as a real service's do). Its capacity is measured
first; then requests arrive open loop (on a schedule, whatever the answers, as real traffic
does) at a multiple of it: once without shedding, once with a fixed concurrency limit and once
with the adaptive (gradient) limit. Latencies are split by status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _harness import free_port, stop, wait_until_ready  # noqa: E402 - after the path setup

ALGORITHMS = ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]
PEERS = {
    "fixed_window": "FixedWindowRateLimiter",
    "sliding_log": "MovingWindowRateLimiter",
    "sliding_window": "SlidingWindowCounterRateLimiter",
    "token_bucket": "FixedWindowRateLimiter",
    "gcra": "FixedWindowRateLimiter",
}
KEYS = [f"client-{i}" for i in range(200)]


# ---------------------------------------------------------------- decisions per second


def counting_connection() -> tuple[type[Any], list[int]]:
    """A redis-py connection class that counts the commands it sends (round trips)."""
    from redis.asyncio.connection import Connection

    sent = [0]

    class Counting(Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            sent[0] += 1
            await super().send_packed_command(command, check_health)

    return Counting, sent


async def batch_rate(
    operation: Callable[[str], Awaitable[object]], count: int, workers: int
) -> float:
    """Decisions per second of `count` operations spread over `workers` concurrent tasks."""

    async def worker(offset: int) -> None:
        for i in range(offset, count, workers):
            await operation(KEYS[i % len(KEYS)])

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return count / (time.perf_counter() - started)


async def compare(
    contenders: dict[str, Callable[[str], Awaitable[object]]], rounds: int, ops: int, workers: int
) -> dict[str, float]:
    """Best batch rate of each contender over `rounds` interleaved batches.

    The machine is shared, so the best batch (the least disturbed one) is the figure, as
    `timeit` does; batches alternate so drift in load hits every contender alike.
    """
    for operation in contenders.values():
        await batch_rate(operation, 200, 1)  # warm up: scripts loaded, connections open
    best = dict.fromkeys(contenders, 0.0)
    names = list(contenders)
    for n in range(rounds):
        for name in names if n % 2 == 0 else names[::-1]:
            best[name] = max(best[name], await batch_rate(contenders[name], ops, workers))
    return best


async def row(algorithm: str, store_name: str, workers: int, redis_url: str | None,
              rounds: int, ops: int) -> None:
    import limits
    import limits.aio.storage
    import limits.aio.strategies
    import redis.asyncio as aioredis

    from bastion.ratelimit import MemoryStore, Metrics, Policy, RateLimiter, RedisStore

    # Large enough that every decision is an admission, the path that does the most work.
    item = limits.parse("1000000/hour")
    policy = Policy("bench", 1_000_000, 3600.0, algorithm)  # type: ignore[arg-type]  # algorithm and mode names are plain str here
    prefix = f"bench:{uuid.uuid4().hex}:"
    ours_sent, peer_sent = [0], [0]
    if store_name == "memory":
        store: Any = MemoryStore()
        storage: Any = limits.aio.storage.MemoryStorage()
    else:
        ours_class, ours_sent = counting_connection()
        client = aioredis.from_url(redis_url or "", connection_class=ours_class,
                                   max_connections=64)
        store = RedisStore(client, key_prefix=prefix)
        peer_class, peer_sent = counting_connection()
        storage = limits.aio.storage.RedisStorage(
            "async+" + (redis_url or ""), implementation="redispy",
            key_prefix=prefix + "limits", connection_class=peer_class, max_connections=64,
        )
    limiter = RateLimiter(store, [policy], metrics=Metrics())
    peer = getattr(limits.aio.strategies, PEERS[algorithm])(storage)

    async def ours(key: str) -> object:
        return await limiter.hit("bench", key)

    async def theirs(key: str) -> object:
        return await peer.hit(item, key)

    async def theirs_with_stats(key: str) -> object:
        # What a Decision carries (remaining, reset) costs `limits` a second call.
        await peer.hit(item, key)
        return await peer.get_window_stats(item, key)

    best = await compare({"ours": ours, "theirs": theirs}, rounds, ops, workers)
    ours_sent[0] = peer_sent[0] = 0
    await batch_rate(ours, ops, workers)
    await batch_rate(theirs, ops, workers)
    rtt = ("-", "-") if store_name == "memory" else (
        f"{ours_sent[0] / ops:.2f}", f"{peer_sent[0] / ops:.2f}")
    full = await compare({"ours": ours, "full": theirs_with_stats}, max(2, rounds // 2), ops,
                         workers)
    note = PEERS[algorithm] + (" (no equivalent)" if algorithm in ("token_bucket", "gcra") else "")
    print(f"{algorithm:<15} {store_name:<7} {workers:>7} {best['ours']:>11,.0f}"
          f" {best['theirs']:>11,.0f} {best['ours'] / best['theirs']:>5.2f}x"
          f" {full['ours'] / full['full']:>9.2f}x  {rtt[0]:>5} {rtt[1]:>5}  {note}", flush=True)
    if store_name == "redis":
        cleaner = aioredis.from_url(redis_url or "")
        keys = [k async for k in cleaner.scan_iter(match=f"{prefix}*")]
        for start in range(0, len(keys), 500):
            await cleaner.delete(*keys[start:start + 500])
        await cleaner.aclose()
        await store.aclose()


async def decisions(redis_url: str | None, rounds: int, memory_ops: int, redis_ops: int,
                    algorithms: list[str]) -> None:
    stores = ["memory"] + (["redis"] if redis_url else [])
    print(f"decisions/s: RateLimiter.hit vs limits (best of {rounds} interleaved batches)")
    print(f"{'algorithm':<15} {'store':<7} {'workers':>7} {'bastion/s':>11} {'limits/s':>11}"
          f" {'ratio':>6} {'vs+stats':>10}  {'rtt b':>5} {'rtt l':>5}  peer")
    for algorithm in algorithms:
        for store_name in stores:
            for workers in ([1] if store_name == "memory" else [1, 32]):
                ops = memory_ops if store_name == "memory" else redis_ops
                await row(algorithm, store_name, workers, redis_url, rounds, ops)


# ---------------------------------------------------------------- fast twins


def _decider_ns(decide: Callable[[str, int, bool, int], object], count: int) -> float:
    """CPU ns per admitted decision of `decide(key, cost, consume, now_us)`."""
    now = time.time_ns() // 1000
    started = time.process_time_ns()
    for i in range(count):
        decide(KEYS[i % 200], 1, True, now + i)
    return (time.process_time_ns() - started) / count


async def _awaited_ns(decide: Callable[..., Awaitable[object]], first: Any, count: int) -> float:
    """CPU ns per `await decide(first, key, ...)` (the limiter's two paths)."""
    extra = () if isinstance(first, str) else (1, True)
    started = time.process_time_ns()
    for i in range(count):
        await decide(first, KEYS[i % 200], *extra)
    return (time.process_time_ns() - started) / count


def _ratio_row(name: str, fast: list[float], plain: list[float]) -> None:
    f, p = statistics.median(fast), statistics.median(plain)
    print(f"{name:<34} {f:>7.0f} {p:>7.0f} {p / f:>9.2f}x")


async def twins(rounds: int, count: int) -> None:
    sys.path.insert(0, str(BENCH.parent))
    from tests.ratelimit._reference import INLINED, reference_decider

    from bastion.ratelimit import MemoryStore, Policy, RateLimiter

    print(f"fast twins: CPU ns per decision, median of {rounds} interleaved rounds of {count}")
    print(f"{'twin':<34} {'fast':>7} {'plain':>7} {'plain/fast':>10}")
    for algorithm in sorted(INLINED):
        policy = Policy("p", 10**9, 60.0, algorithm)  # type: ignore[arg-type]  # a plain str here
        inline, reference = MemoryStore().decider(policy), reference_decider(policy)
        runs = [(_decider_ns(inline, count), _decider_ns(reference, count)) for _ in range(rounds)]
        _ratio_row(f"memory {algorithm} admitted path", [f for f, _ in runs], [p for _, p in runs])
    for algorithm in ALGORITHMS:
        policy = Policy("p", 10**9, 60.0, algorithm)  # type: ignore[arg-type]  # a plain str here
        limiter = RateLimiter(MemoryStore(), [policy])
        entry = limiter._entries["p"]  # the general path the synchronous one stands in for
        fast, plain = [], []
        for _ in range(rounds):
            fast.append(await _awaited_ns(limiter.hit, "p", count))
            plain.append(await _awaited_ns(limiter._decide, entry, count))
        _ratio_row(f"limiter hit, memory {algorithm}", fast, plain)


# ---------------------------------------------------------------- load shedding


def create_app() -> Any:
    """The shedding bench's server app (uvicorn factory); mode from BENCH_SHED_MODE."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from bastion.ratelimit import FixedLimit, GradientLimit, LoadSheddingMiddleware

    async def work(request: Request) -> PlainTextResponse:
        for _ in range(10):  # 10 slices of 0.5 ms CPU, yielding between them
            end = time.perf_counter() + 0.0005
            while time.perf_counter() < end:
                pass
            await asyncio.sleep(0)
        return PlainTextResponse("done")

    app: Any = Starlette(routes=[Route("/work", work)])
    mode = os.environ.get("BENCH_SHED_MODE", "none")
    if mode == "fixed":
        app = LoadSheddingMiddleware(app, limit=FixedLimit(4), queue_size=4, queue_timeout=0.05)
    elif mode == "adaptive":
        app = LoadSheddingMiddleware(app, limit=GradientLimit(8, minimum=2, maximum=64),
                                     queue_size=4, queue_timeout=0.05)
    return app


async def http_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def closed_loop(port: int, connections: int, seconds: float) -> float:
    """Completed requests per second with `connections` clients back to back: the capacity."""
    request = f"GET /work HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    done = [0]
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            await http_get(reader, writer, request)
            done[0] += 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return done[0] / seconds


async def open_loop(port: int, rate: float, seconds: float) -> dict[int, list[float]]:
    """Send `rate` requests per second whatever the answers (arrivals do not wait for the
    server, as real traffic does not); latencies by status, from each request's send."""
    request = f"GET /work HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    latencies: dict[int, list[float]] = {}
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        connection = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        try:
            status = await http_get(*connection, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed an idle keep-alive connection: reconnect, keep the start time.
            connection = await asyncio.open_connection("127.0.0.1", port)
            status = await http_get(*connection, request)
        latencies.setdefault(status, []).append(time.perf_counter() - started)
        idle.append(connection)

    begin = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def start_app(mode: str) -> tuple[int, subprocess.Popen[bytes], Path]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bastion-shed-bench-", suffix=".log")[1])
    env = {**os.environ, "BENCH_SHED_MODE": mode,
           "PYTHONPATH": os.pathsep.join([str(BENCH), str(BENCH.parent / "src")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ratelimit_bench:create_app", "--factory",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--backlog", "4096"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    wait_until_ready(f"http://127.0.0.1:{port}/work", process, log)
    return port, process, log


def shedding(overload: float, seconds: float) -> None:
    port, process, log = start_app("none")
    try:
        capacity = asyncio.run(closed_loop(port, 4, 3.0))
    finally:
        stop(process)
        log.unlink(missing_ok=True)
    rate = overload * capacity
    print(f"\nload shedding: one uvicorn process, 5 ms CPU per request, measured capacity"
          f" {capacity:.0f}/s; offered {rate:.0f}/s ({overload:g}x) for {seconds:.0f} s, open loop")
    print(f"{'mode':<9} {'200/s':>7} {'200 p50':>9} {'200 p99':>9} {'503/s':>7} {'503 p50':>9}"
          f" {'503 p99':>9}")
    for mode in ("none", "fixed", "adaptive"):
        port, process, log = start_app(mode)
        try:
            latencies = asyncio.run(open_loop(port, rate, seconds))
        finally:
            stop(process)
            log.unlink(missing_ok=True)
        ok, shed = latencies.get(200, []), latencies.get(503, [])

        def cell(values: list[float], fraction: float) -> str:
            return f"{percentile(values, fraction):>7.1f}ms" if values else f"{'-':>9}"

        print(f"{mode:<9} {len(ok) / seconds:>7.0f} {cell(ok, 0.5)} {cell(ok, 0.99)}"
              f" {len(shed) / seconds:>7.0f} {cell(shed, 0.5)} {cell(shed, 0.99)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["all", "decisions", "shedding", "twins"], default="all")
    parser.add_argument("--redis", default=os.environ.get("BASTION_BENCH_REDIS",
                                                          "redis://127.0.0.1:6379/0"))
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=ALGORITHMS)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--memory-ops", type=int, default=2_000)
    parser.add_argument("--redis-ops", type=int, default=500)
    parser.add_argument("--overload", type=float, default=3.0,
                        help="offered load as a multiple of the measured capacity")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    if args.what in ("all", "decisions"):
        asyncio.run(decisions(None if args.no_redis else args.redis, args.rounds,
                              args.memory_ops, args.redis_ops, args.algorithms))
    if args.what in ("all", "twins"):
        asyncio.run(twins(max(3, args.rounds // 4), 50_000))
    if args.what in ("all", "shedding"):
        shedding(args.overload, args.seconds)


if __name__ == "__main__":
    main()
