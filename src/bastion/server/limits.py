"""Rate limiting and load shedding for the authorization server (bastion.ratelimit, wired here).

Out of the box only failures are limited, and never by an identifier alone that anyone knows
(client ids and usernames are public: a limit keyed on one lets a stranger lock its owner out;
SECURITY.md, "Lockouts"):
- failed client authentications per source address. The address is refused before the
  credentials are checked only once this process has seen it go over the limit, so a client
  that authenticates costs no store round trip;
- failed sign-ins per device cookie for a browser that signed in to the account before, else
  per address, per (account, address) and, for untrusted browsers together, per account;
- wrong second-factor codes per account (only someone past the password can make one).
- what a stranger makes the server store: pending requests and device codes started without
  a signed-in session, per source address (`anonymous_requests_per_address`).
Successful traffic is limited only by policies declared in `[ratelimit.policies]`:
- a policy keyed on `client_id` whose `routes` match an OAuth endpoint is counted after the
  client has authenticated there (e.g. `token_per_client`, routes = ["/token"]);
- any other policy with `routes` is counted by the middleware before the endpoint runs.
Load shedding (`[ratelimit.shedding]`) is off unless enabled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from starlette.middleware import Middleware

from bastion.config import Settings
from bastion.identity.devices import account_key
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

ADDRESS_FAILURES = "client_auth_failures_per_address"
LOGIN_DEVICE_FAILURES = "login_failures_per_device"
LOGIN_ACCOUNT_ADDRESS_FAILURES = "login_failures_per_account_address"
LOGIN_ACCOUNT_FAILURES = "login_failures_per_account"
LOGIN_ADDRESS_FAILURES = "login_failures_per_address"
SECOND_FACTOR_FAILURES = "second_factor_failures_per_account"
DEVICE_USER_CODE_FAILURES = "device_user_code_per_address"
ANONYMOUS_REQUESTS = "anonymous_requests_per_address"
# Addresses remembered as over the client-authentication limit, per process; past this many the
# oldest is forgotten (it then has one more guess checked before it is refused again).
_REFUSED_MAX: Final = 10_000


class RateLimited(Exception):
    """Raised inside an endpoint; rendered as the limiter's 429."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        super().__init__("rate limited")
        self.decisions = list(decisions)


class ServerLimits:
    """The server's limiter and the places it is consulted from inside endpoints and pages."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.client_policies = [p for p in limiter.policies.values() if p.routes and "client_id" in p.key]
        # source address -> (refused until, on the limiter's clock; the refusal)
        self._refused: dict[str, tuple[float, Decision]] = {}

    def check_client_auth(self, source: str) -> None:
        """Refuse, before any credential is checked, an address this process has seen go over
        the client-authentication failure limit, until the limiter said it may retry.

        No store round trip: a client that authenticates correctly never waits on the limiter.
        A process learns that an address is over the limit from the failure that spends its last
        allowance (or, when other processes spent it, from its own first refused failure), so
        past the limit each process checks at most one guess per address per retry interval.
        """
        refused = self._refused.get(source)
        if refused is None:
            return
        until, decision = refused
        wait = until - self.limiter.clock()
        if wait <= 0:
            del self._refused[source]
            return
        elapsed = decision.retry_after - wait
        raise RateLimited([decision._replace(retry_after=wait, reset_after=max(wait, decision.reset_after - elapsed))])

    async def record_client_auth_failure(self, source: str) -> None:
        """Count a failed client authentication from `source`. Raise RateLimited when the
        address is over the limit; remember an address over it or with no allowance left, so
        that `check_client_auth` refuses its next request unchecked."""
        if ADDRESS_FAILURES not in self.limiter.policies:
            return
        decision = await self.limiter.hit(ADDRESS_FAILURES, source)
        if decision.allowed and decision.remaining > 0:
            return
        over = not decision.allowed
        if decision.allowed:
            # The last unit of the allowance was just spent: how long until the next one (a
            # second round trip, on the failure path only).
            decision = await self.limiter.check(ADDRESS_FAILURES, source)
        if not decision.allowed and not decision.degraded:
            # A refusal because the store is unreachable (a fail-closed policy) is not
            # remembered: once the store is back, the next failure is counted there again.
            self._remember(source, decision)
        if over:
            raise RateLimited([decision])

    def _remember(self, source: str, decision: Decision) -> None:
        refused = self._refused
        now = self.limiter.clock()
        if len(refused) >= _REFUSED_MAX:
            for stale in [address for address, (until, _) in refused.items() if until <= now]:
                del refused[stale]
            if len(refused) >= _REFUSED_MAX:
                del refused[next(iter(refused))]
        refused[source] = (now + decision.retry_after, decision)

    def _login_pairs(self, account: str, source: str, device: str | None) -> list[tuple[str, str]]:
        # A browser with a valid device cookie for this account is judged by its own failures
        # only (OWASP, device cookies); strangers' failures never reach its counter. Any other
        # attempt is counted by its address, by the account from that address and by the
        # account across untrusted browsers. The account key is the name typed, whether or not
        # such a user exists, so the answer never reveals which accounts exist.
        if device is not None:
            pairs = [(LOGIN_DEVICE_FAILURES, device)]
        else:
            account = account_key(account)
            pairs = [
                (LOGIN_ADDRESS_FAILURES, source),
                (LOGIN_ACCOUNT_ADDRESS_FAILURES, f"{len(account)}:{account}|{source}"),
                (LOGIN_ACCOUNT_FAILURES, account),
            ]
        return [(name, key) for name, key in pairs if name in self.limiter.policies]

    def _second_factor_pairs(self, sub: str, device: str | None) -> list[tuple[str, str]]:
        # Only someone who has just given the right password reaches the second factor, so its
        # failures are counted apart from password failures, which anyone can make.
        pairs = [(LOGIN_DEVICE_FAILURES, device)] if device is not None else [(SECOND_FACTOR_FAILURES, sub)]
        return [(name, key) for name, key in pairs if name in self.limiter.policies]

    async def _refusal(self, pairs: list[tuple[str, str]]) -> Decision | None:
        decisions = [await self.limiter.check(name, key) for name, key in pairs]
        if decisions and not strictest(decisions).allowed:
            return strictest(decisions)
        return None

    async def check_login(self, account: str, source: str, device: str | None) -> Decision | None:
        """The binding refusal when failed sign-ins for this device, or (without one) for this
        address, account and address, or account are over the limit."""
        return await self._refusal(self._login_pairs(account, source, device))

    async def record_login_failure(self, account: str, source: str, device: str | None) -> None:
        for name, key in self._login_pairs(account, source, device):
            await self.limiter.hit(name, key)

    async def check_second_factor(self, sub: str, device: str | None) -> Decision | None:
        """The binding refusal when wrong second-factor codes for this account (or this
        device) are over the limit."""
        return await self._refusal(self._second_factor_pairs(sub, device))

    async def record_second_factor_failure(self, sub: str, device: str | None) -> None:
        for name, key in self._second_factor_pairs(sub, device):
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

    async def authenticated(self, path: str, client_id: str, source: str) -> list[Decision]:
        """Count route policies keyed on client_id, once the client is known; the decisions, for
        the admitted response's `RateLimit` fields (RateLimited when one refuses)."""
        if not self.client_policies:
            return []
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
        return decisions


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
