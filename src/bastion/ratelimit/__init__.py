"""Rate limiting, quotas and load shedding.

Rate limiting refuses on properties of the request (who, from where, how often: 429); load
shedding refuses on the state of the system (too much in flight: 503). The algorithms are
sans-I/O (`bastion.ratelimit.algorithms`), the stores are memory and Redis, and the ASGI
middleware and header rendering sit on top.

Typical use::

    limiter = RateLimiter(MemoryStore(), parse_policies(config.get("policies", {})))
    decisions = await limiter.check_all([("login_failures_per_account", account),
                                         ("login_failures_per_address", address)])
    if not strictest(decisions).allowed:
        response = too_many_requests(decisions)   # 429, headers, JSON body

What comes from the `limits` library, and what does not: its rate grammar ("20/minute",
"100 per 15 minutes", via `limits.parse`) is what policies are written in, and it is the peer
the benchmark measures against. The algorithms and stores are written here because `limits`
5.8 has no token bucket or GCRA; its clock cannot be injected, so window edges could only be
tested by sleeping; its `hit` answers only yes or no, so remaining and reset (for the IETF
header fields) cost a second round trip; and its Redis storage has no per-policy fail-open or
fail-closed answer.
"""

from bastion.ratelimit.decision import Decision, strictest
from bastion.ratelimit.dependency import RateLimited, rate_limit, rate_limited_handler
from bastion.ratelimit.headers import (
    RateLimitResponse,
    rate_limit_headers,
    retry_after_seconds,
    too_many_requests,
)
from bastion.ratelimit.keys import KEY_FUNCTIONS, KeyFunction, compose_key
from bastion.ratelimit.limiter import Clock, RateLimiter, UnknownPolicy
from bastion.ratelimit.metrics import DEFAULT_METRICS, Metrics, render_prometheus
from bastion.ratelimit.middleware import RateLimitMiddleware
from bastion.ratelimit.policy import (
    DEFAULT_POLICIES,
    REMOVED_POLICIES,
    Algorithm,
    FailureMode,
    KeyPart,
    Kind,
    Policy,
    PolicyError,
    default_policies,
    parse_policies,
)
from bastion.ratelimit.shedding import ConcurrencyGate, FixedLimit, GradientLimit, Limit
from bastion.ratelimit.shedding_middleware import LoadSheddingMiddleware
from bastion.ratelimit.stores import MemoryStore, RedisStore, Store, StoreUnavailable

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_POLICIES",
    "KEY_FUNCTIONS",
    "REMOVED_POLICIES",
    "Algorithm",
    "Clock",
    "ConcurrencyGate",
    "Decision",
    "FailureMode",
    "FixedLimit",
    "GradientLimit",
    "KeyFunction",
    "KeyPart",
    "Kind",
    "Limit",
    "LoadSheddingMiddleware",
    "MemoryStore",
    "Metrics",
    "Policy",
    "PolicyError",
    "RateLimitMiddleware",
    "RateLimitResponse",
    "RateLimited",
    "RateLimiter",
    "RedisStore",
    "Store",
    "StoreUnavailable",
    "UnknownPolicy",
    "compose_key",
    "default_policies",
    "parse_policies",
    "rate_limit",
    "rate_limit_headers",
    "rate_limited_handler",
    "render_prometheus",
    "retry_after_seconds",
    "strictest",
    "too_many_requests",
]
