"""`[ratelimit]`: the rate-limit policies and load shedding, typed and checked with the other settings.

The policies table is parsed by `bastion.ratelimit.parse_policies` (the built-in policies, each
changed or disabled by name, plus new ones); `[ratelimit.shedding]` puts load shedding in front
of every endpoint. A wrong value stops `serve` before it binds, naming the key
(`ratelimit.shedding.queue_size`) and the fix, like every other setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from bastion.config._types import ConfigError, refuse_unknown
from bastion.ratelimit import DEFAULT_POLICIES, Policy, PolicyError, parse_policies

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SheddingSettings:
    """`[ratelimit.shedding]`: at most `limit` requests in flight ("adaptive": learnt from
    latency), up to `queue_size` more waiting at most `queue_timeout` seconds, the rest answered
    503. Off unless `enabled`."""

    enabled: bool = False
    limit: Literal["adaptive"] | int = "adaptive"
    queue_size: int = 8
    queue_timeout: float = 0.1


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """`[ratelimit]`: the policies in force (the built-in ones unless changed) and load shedding."""

    policies: tuple[Policy, ...] = DEFAULT_POLICIES
    shedding: SheddingSettings = field(default_factory=SheddingSettings)


def parse_ratelimit(raw: object) -> RateLimitSettings:
    """The `[ratelimit]` table as typed settings.

    Raises:
        ConfigError: naming the key (e.g. `ratelimit.shedding.queue_size`), the problem and the fix.
    """
    table = _table("ratelimit", raw, ("policies", "shedding"))
    try:
        policies = tuple(parse_policies(table.get("policies", {})))
    except PolicyError as exc:
        # PolicyError says "policies.NAME.KEY: problem"; the key becomes the setting's name.
        where, _, problem = str(exc).partition(": ")
        raise ConfigError(f"ratelimit.{where}", problem, "fix the [ratelimit.policies] table") from None
    return RateLimitSettings(policies, _shedding(table.get("shedding", {})))


def _shedding(raw: object) -> SheddingSettings:
    table = _table("ratelimit.shedding", raw, ("enabled", "limit", "queue_size", "queue_timeout"))
    default = SheddingSettings()

    def read(key: str, check: Callable[[str, Any], T], fallback: T) -> T:
        return check(f"ratelimit.shedding.{key}", table[key]) if key in table else fallback

    return SheddingSettings(
        enabled=read("enabled", _boolean, default.enabled),
        limit=read("limit", _limit, default.limit),
        queue_size=read("queue_size", _queue_size, default.queue_size),
        queue_timeout=read("queue_timeout", _seconds, default.queue_timeout),
    )


def _table(name: str, raw: object, known: tuple[str, ...]) -> Mapping[str, Any]:
    """`raw` when it is a table holding only `known` keys; an unknown key is named with the closest."""
    if not isinstance(raw, Mapping):
        raise ConfigError(name, f"{raw!r} is not a table", f"write it as a [{name}] table in the TOML config file")
    refuse_unknown(raw, known, lambda key: f"{name}.{key}", f"use {', '.join(known)}")
    return raw


def _boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, f"{value!r} is not true or false", "write true or false")
    return value


def _limit(name: str, value: object) -> Literal["adaptive"] | int:
    if value == "adaptive":
        return "adaptive"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ConfigError(
        name,
        f'{value!r} is not "adaptive" or a whole number of at least 1',
        'write "adaptive" (learnt from latency) or a fixed concurrency, e.g. 64',
    )


def _queue_size(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(name, f"{value!r} is not a whole number of at least 0", "write e.g. 8 (0: no queue)")


def _seconds(name: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    raise ConfigError(name, f"{value!r} is not a number of seconds above 0", "write e.g. 0.1")
