"""Rate limiting and load shedding for the authorization server (bastion.ratelimit, wired here).

Out of the box failures are limited (failed client authentications per client_id and per
source address, so a flood of wrong secrets is answered 429 before any guess is checked; failed
sign-ins; wrong user codes), and so is what a stranger makes the server store: pending requests
and device codes started without a signed-in session, per source address
(`anonymous_requests_per_address`).
Successful traffic is limited only by policies declared in `[ratelimit.policies]`:
- a policy keyed on `client_id` whose `routes` match an OAuth endpoint is counted after the
  client has authenticated there (e.g. `token_per_client`, routes = ["/token"]);
- any other policy with `routes` is counted by the middleware before the endpoint runs.
Load shedding (`[ratelimit.shedding]`) is off unless enabled.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware

from bastion.config import Settings
from bastion.ratelimit import (
    Decision,
    FixedLimit,
    GradientLimit,
    LoadSheddingMiddleware,
    MemoryStore,
    RateLimiter,
    RateLimitMiddleware,
    RedisStore,
    compose_key,
    strictest,
    too_many_requests,
)
from bastion.ratelimit.middleware import route_matches

CLIENT_FAILURES = "client_auth_failures_per_client"
ADDRESS_FAILURES = "client_auth_failures_per_address"
LOGIN_ACCOUNT_FAILURES = "login_failures_per_account"
LOGIN_ACCOUNT_BURST = "login_failures_per_account_burst"
LOGIN_ADDRESS_FAILURES = "login_failures_per_address"
DEVICE_USER_CODE_FAILURES = "device_user_code_per_address"
ANONYMOUS_REQUESTS = "anonymous_requests_per_address"


class RateLimited(Exception):
    """Raised inside an endpoint; rendered as the limiter's 429."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        super().__init__("rate limited")
        self.decisions = list(decisions)


class ServerLimits:
    """The server's limiter and the two places it is consulted from inside endpoints."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.client_policies = [p for p in limiter.policies.values() if p.routes and "client_id" in p.key]

    async def check_client_auth(self, client_id: str | None, source: str) -> None:
        """Refuse before any credential is checked when failures from this address or for this
        client are over the limit (peeks; nothing is counted). Every token request passes here."""
        limiter = self.limiter
        decisions = []
        if ADDRESS_FAILURES in limiter.policies:
            decisions.append(await limiter.check(ADDRESS_FAILURES, source))
        if client_id and CLIENT_FAILURES in limiter.policies:
            decisions.append(await limiter.check(CLIENT_FAILURES, client_id))
        # strictest(decisions) is a refusal exactly when one of them is.
        for decision in decisions:
            if not decision.allowed:
                raise RateLimited(decisions)

    async def record_client_auth_failure(self, client_id: str | None, source: str) -> None:
        pairs = [(ADDRESS_FAILURES, source)]
        if client_id:
            pairs.append((CLIENT_FAILURES, client_id))
        for name, key in pairs:
            if name in self.limiter.policies:
                await self.limiter.hit(name, key)

    def _login_pairs(self, account: str, source: str) -> list[tuple[str, str]]:
        # The account key is the name typed, whether or not such a user exists, so the answer
        # never reveals which accounts exist.
        account = account.lower()
        pairs = [(LOGIN_ADDRESS_FAILURES, source), (LOGIN_ACCOUNT_BURST, account), (LOGIN_ACCOUNT_FAILURES, account)]
        return [(name, key) for name, key in pairs if name in self.limiter.policies]

    async def check_login(self, account: str, source: str) -> Decision | None:
        """The binding refusal when failed logins for this account or address are over the limit."""
        decisions = [await self.limiter.check(name, key) for name, key in self._login_pairs(account, source)]
        if decisions and not strictest(decisions).allowed:
            return strictest(decisions)
        return None

    async def record_login_failure(self, account: str, source: str) -> None:
        for name, key in self._login_pairs(account, source):
            await self.limiter.hit(name, key)

    def _user_code_pairs(self, session: str, source: str) -> list[tuple[str, str]]:
        # RFC 8628 §5.1: wrong user codes are counted per source address and, with the same
        # allowance, per browser session (a session that hops addresses gains nothing).
        if DEVICE_USER_CODE_FAILURES not in self.limiter.policies:
            return []
        return [(DEVICE_USER_CODE_FAILURES, source), (DEVICE_USER_CODE_FAILURES, f"session:{session}")]

    async def check_user_code(self, session: str, source: str) -> Decision | None:
        """The binding decision for user-code entry from this session and address (None: unlimited)."""
        decisions = [await self.limiter.check(name, key) for name, key in self._user_code_pairs(session, source)]
        return strictest(decisions) if decisions else None

    async def record_user_code_failure(self, session: str, source: str) -> Decision | None:
        """Count a wrong user code; the binding decision afterwards (None: unlimited)."""
        decisions = [await self.limiter.hit(name, key) for name, key in self._user_code_pairs(session, source)]
        return strictest(decisions) if decisions else None

    async def admit_anonymous(self, source: str) -> Decision | None:
        """Count one row an anonymous request is about to make the server store (a pending
        request, a device code); the refusal when this address is over the limit, else None."""
        if ANONYMOUS_REQUESTS not in self.limiter.policies:
            return None
        decision = await self.limiter.hit(ANONYMOUS_REQUESTS, source)
        return None if decision.allowed else decision

    async def authenticated(self, path: str, client_id: str, source: str) -> None:
        """Count route policies keyed on client_id, once the client is known."""
        if not self.client_policies:
            return
        scope = {"state": {"client_id": client_id}, "client": (source, 0), "method": "POST", "path": path}
        decisions = []
        for policy in self.client_policies:
            if not route_matches(policy, "POST", path):
                continue
            key = compose_key(policy.key, scope)
            if key is not None:
                decisions.append(await self.limiter.hit(policy.name, key))
        if decisions and not strictest(decisions).allowed:
            raise RateLimited(decisions)


def build_limiter(settings: Settings) -> RateLimiter:
    """The limiter of `[ratelimit.policies]`, on Redis when the workers share one, else in memory."""
    store = RedisStore(settings.redis_url.reveal()) if settings.redis_url is not None else MemoryStore()
    return RateLimiter(store, settings.ratelimit.policies)


def rate_limited_response(exc: RateLimited) -> tuple[int, list[tuple[str, str]], bytes]:
    refused = [d for d in exc.decisions if not d.allowed] or exc.decisions
    response = too_many_requests(refused)
    return response.status_code, response.headers, response.body


def middleware(settings: Settings, limiter: RateLimiter) -> list[Middleware]:
    """The ASGI layers: load shedding outermost (when enabled), then route policies."""
    layers = []
    shedding = settings.ratelimit.shedding
    if shedding.enabled:
        limit = GradientLimit() if shedding.limit == "adaptive" else FixedLimit(shedding.limit)
        layers.append(
            Middleware(
                LoadSheddingMiddleware,
                limit=limit,
                queue_size=shedding.queue_size,
                queue_timeout=shedding.queue_timeout,
                critical_paths=("/health", "/revoke"),
            )
        )
    if any(p.routes and "client_id" not in p.key for p in limiter.policies.values()):
        layers.append(Middleware(RateLimitMiddleware, limiter=limiter))
    return layers
