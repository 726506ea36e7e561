"""Running a revocation feed in the background: poll, prune, sleep, forever (until cancelled);
a feed that is told of revocations as they happen (a `Listener`) runs its own loop instead."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from bastion.guard._denylist import Denylist
from bastion.guard._fetch import FetchError

__all__ = ["Listener", "Pollable", "run_periodically"]

log = logging.getLogger("bastion.guard")


class Pollable(Protocol):
    """Anything with an async `poll()`."""

    async def poll(self) -> int: ...


@runtime_checkable
class Listener(Protocol):
    """A feed with its own loop (`RedisRevocationSubscriber`): it listens, and prunes the denylist."""

    async def run(self) -> None: ...


async def run_periodically(
    source: Pollable,
    interval: float,
    *,
    denylist: Denylist | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Poll forever (cancel the task to stop); errors are logged and retried next interval.

    A `Listener` is not polled: its own `run` loop is the feed (`interval` is not used)."""
    if isinstance(source, Listener):
        await source.run()
        return
    while True:
        try:
            await source.poll()
        except (FetchError, OSError, ConnectionError) as exc:
            log.warning("guard: revocation poll failed: %r", exc)
        except Exception as exc:  # the poller must outlive a bad response or a Redis hiccup
            log.exception("guard: revocation poll crashed: %r", exc)
        if denylist is not None:
            denylist.prune(clock())
        await asyncio.sleep(interval)
