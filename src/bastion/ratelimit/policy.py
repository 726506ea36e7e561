"""Rate-limit policies: what is counted, by which algorithm, within which limits.

Policies are plain configuration data (a table per policy, e.g. from TOML), validated at start
with errors that name the key and the fix. Built-in defaults limit only failures (client
authentication, login, device user-code entry), so successful traffic is unlimited unless
configured: benchmarks measure the server, not the limiter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast, get_args

import limits

from bastion.ratelimit.algorithms import gcra

Algorithm = Literal["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra"]
Kind = Literal["burst", "quota"]
FailureMode = Literal["open", "closed"]
KeyPart = Literal["client_id", "sub", "api_key_id", "source_address", "route", "device"]
CalendarUnit = Literal["day", "month", "year"]

ALGORITHMS: Final = frozenset(get_args(Algorithm))
KEY_PARTS: Final = frozenset(get_args(KeyPart))
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_MICRO: Final = 1_000_000


class PolicyError(ValueError):
    """A policy table is invalid; the message names the key and how to fix it."""


@dataclass(frozen=True, slots=True)
class Policy:
    """One named limit.

    Attributes:
        name: the policy's name, used by callers and in the `RateLimit-Policy` header.
        limit: units admitted per window (quota `q` in the IETF header fields).
        window: the window in seconds (`w`); for token_bucket and gcra, the time in which
            `limit` units refill.
        algorithm: fixed_window, sliding_log, sliding_window, token_bucket or gcra.
        burst: bucket capacity for token_bucket and gcra (defaults to `limit`).
        kind: "quota" for long-window allowances, "burst" for short-term rate limits; tells
            the caller which one is exhausted.
        key: the request attributes counted together (their combination is the key).
        on_store_error: "open" admits and "closed" refuses when the store is unreachable.
        calendar: fixed windows aligned to UTC calendar days, months or years.
        routes: path prefixes the middleware applies this policy to (empty: not by middleware).
        methods: HTTP methods the middleware applies it to (empty: all).
    """

    name: str
    limit: int
    window: float
    algorithm: Algorithm = "sliding_window"
    burst: int | None = None
    kind: Kind = "burst"
    key: tuple[KeyPart, ...] = ("source_address",)
    on_store_error: FailureMode = "open"
    calendar: CalendarUnit | None = None
    routes: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    window_us: int = field(init=False, repr=False, compare=False)
    """The window in microseconds, the unit the algorithms count in."""
    interval_us: int = field(init=False, repr=False, compare=False)
    """GCRA's emission interval (window / limit) in whole microseconds, at least 1."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_us", round(self.window * _MICRO))
        object.__setattr__(
            self, "interval_us", gcra.emission_interval(max(1, self.limit), self.window_us)
        )
        if self.limit < 1 or self.window_us < 1 or (self.burst is not None and self.burst < 1):
            raise ValueError(f"policy {self.name!r}: limit, burst and window must be positive")

    @property
    def capacity(self) -> int:
        """Bucket size for token_bucket and gcra."""
        return self.limit if self.burst is None else self.burst

    def bounds(self, now_us: int) -> tuple[int, int]:
        """The fixed window [start, end) containing `now_us`, in microseconds."""
        if self.calendar is None:
            start = now_us - now_us % self.window_us
            return start, start + self.window_us
        return _calendar_bounds(self.calendar, now_us)


def _calendar_bounds(unit: CalendarUnit, now_us: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(now_us // _MICRO, UTC)
    if unit == "day":
        start = moment.replace(hour=0, minute=0, second=0)
        end_ts = start.timestamp() + 86_400
    elif unit == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0)
        following = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
        end_ts = following.timestamp()
    else:
        start = moment.replace(month=1, day=1, hour=0, minute=0, second=0)
        end_ts = start.replace(year=start.year + 1).timestamp()
    return int(start.timestamp()) * _MICRO, int(end_ts) * _MICRO


_MINUTE: Final = 60.0
# When the store is unreachable (Redis down) the limits on guessing (failed client
# authentications, sign-ins, second factors, user codes) refuse: counting nothing would give an
# attacker unlimited guesses for as long as the outage lasts. The limit on what anonymous
# requests make the server store admits: refusing would stop every new sign-in flow, and the
# rows it bounds expire. A policy a configuration adds admits unless it says `closed`.
DEFAULT_POLICIES: Final[tuple[Policy, ...]] = (
    # A flood of wrong client credentials is refused (RFC 6749 §10.10, RFC 9700 §4.11 brute
    # force), counted per source address only: client ids are public, so a limit keyed on the
    # client would let anyone lock the client out (SECURITY.md, "Lockouts").
    Policy("client_auth_failures_per_address", 20, _MINUTE, "gcra", key=("source_address",), on_store_error="closed"),
    # OWASP ASVS V2.2.1 and the OWASP device-cookie scheme: a browser that signed in to the
    # account before is judged by its own failures only (`per_device`); any other attempt by its
    # address, by the account from that address (three free, then 20 s apart) and, for all
    # untrusted browsers together, by the account (past ten in 15 minutes, 90 s apart). A
    # stranger can so slow down only the untrusted browsers of an account, never a known one.
    Policy("login_failures_per_device", 10, 15 * _MINUTE, "gcra", key=("device",), on_store_error="closed"),
    Policy(
        "login_failures_per_account_address", 3, _MINUTE, "gcra", key=("sub", "source_address"),
        on_store_error="closed",
    ),
    Policy("login_failures_per_account", 10, 15 * _MINUTE, "gcra", key=("sub",), on_store_error="closed"),
    Policy("login_failures_per_address", 50, 15 * _MINUTE, "gcra", key=("source_address",), on_store_error="closed"),
    # Wrong second-factor codes: only someone who has just given the password can make one, so
    # strangers' password failures never slow the second factor down.
    Policy("second_factor_failures_per_account", 10, 15 * _MINUTE, "gcra", key=("sub",), on_store_error="closed"),
    # RFC 8628 §5.1: user codes are short, so their entry must be rate limited.
    Policy("device_user_code_per_address", 10, _MINUTE, "gcra", key=("source_address",), on_store_error="closed"),
    # What a browser that has not signed in makes the server store (a pending authorization or
    # device request, a device code), per source: storage grows only as fast as this allows.
    Policy("anonymous_requests_per_address", 60, _MINUTE, "gcra", key=("source_address",), on_store_error="open"),
)
# Built-in policies that were removed because a stranger could use them to lock out the owner
# of a public id; a configuration still naming one is refused with the reason.
REMOVED_POLICIES: Final[dict[str, str]] = {
    "client_auth_failures_per_client": "client ids are public: anyone could lock the client out;"
    " failures are limited per source address (client_auth_failures_per_address)",
    "login_failures_per_account_burst": "keyed on the account alone, anyone could lock the user out;"
    " the short delay is now per account and address (login_failures_per_account_address)",
}


def default_policies() -> list[Policy]:
    """The built-in policies: failures, and what anonymous requests make the server store;
    other successful traffic is not limited."""
    return list(DEFAULT_POLICIES)


def parse_policies(data: Mapping[str, Any], *, defaults: bool = True) -> list[Policy]:
    """Build policies from configuration: a table of policy tables keyed by name.

    A table named like a default replaces that default's fields it sets; `enabled = false`
    removes a policy. Example (TOML, `[ratelimit.policies]` passed as `data`)::

        [token_per_client]
        key = ["client_id"]
        limit = "100/minute"
        algorithm = "gcra"
        burst = 20

    Raises:
        PolicyError: naming `policies.<name>.<key>` and the fix.
    """
    if not isinstance(data, Mapping):
        raise PolicyError("policies: expected a table of policy tables keyed by name")
    chosen: dict[str, Policy] = {p.name: p for p in DEFAULT_POLICIES} if defaults else {}
    for name, table in data.items():
        where = f"policies.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise PolicyError(f"{where}: a name is 1-64 of a-z 0-9 _ . - starting with a letter")
        if not isinstance(table, Mapping):
            raise PolicyError(f"{where}: expected a table, e.g. {{limit = \"20/minute\"}}")
        if table.get("enabled", True) is False:
            chosen.pop(name, None)
            continue
        if defaults and name in REMOVED_POLICIES:
            raise PolicyError(f"{where}: this built-in policy was removed ({REMOVED_POLICIES[name]}); "
                              "remove the table")
        chosen[name] = _parse_one(name, table, chosen.get(name))
    return list(chosen.values())


_KNOWN: Final = frozenset(
    {"enabled", "limit", "algorithm", "burst", "kind", "key", "on_store_error", "calendar",
     "routes", "methods"}
)


def _parse_one(name: str, table: Mapping[str, Any], base: Policy | None) -> Policy:
    where = f"policies.{name}"
    unknown = sorted(set(table) - _KNOWN)
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: unknown key; known keys: {', '.join(sorted(_KNOWN))}")
    if "limit" not in table and base is None:
        raise PolicyError(f"{where}.limit: required, e.g. limit = \"20/minute\"")
    policy = base or Policy(name, 1, 1.0)
    changes: dict[str, Any] = {}
    unit = None
    if "limit" in table:
        changes["limit"], changes["window"], unit = _rate(f"{where}.limit", table["limit"])
    if "algorithm" in table:
        changes["algorithm"] = _choice(f"{where}.algorithm", table["algorithm"], ALGORITHMS)
    if "burst" in table:
        changes["burst"] = _positive(f"{where}.burst", table["burst"])
    if "kind" in table:
        changes["kind"] = _choice(f"{where}.kind", table["kind"], frozenset({"burst", "quota"}))
    if "on_store_error" in table:
        changes["on_store_error"] = _choice(
            f"{where}.on_store_error", table["on_store_error"], frozenset({"open", "closed"})
        )
    if "key" in table:
        changes["key"] = _key(f"{where}.key", table["key"])
    for list_key in ("routes", "methods"):
        if list_key in table:
            changes[list_key] = _strings(f"{where}.{list_key}", table[list_key])
    if "methods" in changes:
        changes["methods"] = tuple(m.upper() for m in changes["methods"])
    policy = replace(policy, **changes)
    if "burst" in table and policy.algorithm not in ("token_bucket", "gcra"):
        raise PolicyError(f"{where}.burst: only token_bucket and gcra have a burst; remove it"
                          " or set algorithm = \"gcra\"")
    if table.get("calendar", False):
        policy = _calendar(where, policy, unit)
    return policy


def _rate(where: str, value: object) -> tuple[int, float, str]:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: expected a string such as \"20/minute\" or \"1000 per day\"")
    try:
        item = limits.parse(value)
    except ValueError:
        raise PolicyError(
            f"{where}: {value!r} is not a rate; write COUNT/UNIT or COUNT per N UNITS with a unit"
            " of second, minute, hour, day, month or year, e.g. \"20/minute\""
        ) from None
    if item.amount < 1 or item.multiples < 1:
        raise PolicyError(f"{where}: {value!r} must allow at least 1 request per non-empty window")
    unit = str(item.GRANULARITY.name) if item.multiples == 1 else ""
    return int(item.amount), float(item.get_expiry()), unit


def _calendar(where: str, policy: Policy, unit: str | None) -> Policy:
    if policy.algorithm != "fixed_window":
        raise PolicyError(f"{where}.calendar: only fixed_window counts calendar periods; "
                          "set algorithm = \"fixed_window\"")
    if unit not in ("day", "month", "year"):
        raise PolicyError(f"{where}.calendar: needs a limit per day, month or year, "
                          "e.g. limit = \"10000/month\"")
    return replace(policy, calendar=cast(CalendarUnit, unit))


def _choice(where: str, value: object, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise PolicyError(f"{where}: {value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _positive(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{where}: expected a whole number of at least 1, got {value!r}")
    return value


def _strings(where: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: expected a list of strings")
    return tuple(value)


def _key(where: str, value: object) -> tuple[KeyPart, ...]:
    parts = _strings(where, value)
    for part in parts:
        if part not in KEY_PARTS:
            raise PolicyError(f"{where}: {part!r} is not one of {', '.join(sorted(KEY_PARTS))}")
    if not parts:
        raise PolicyError(f"{where}: name at least one of {', '.join(sorted(KEY_PARTS))}")
    return cast(tuple[KeyPart, ...], parts)  # each part was checked against KEY_PARTS
