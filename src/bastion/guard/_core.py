"""One request pipeline shared by the middleware and the FastAPI dependencies.

credentials (RFC 6750 §2.1) -> authenticate (token or API key) -> authorize (scopes AND roles).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bastion.guard._authenticator import Authenticator
from bastion.guard._errors import GuardError
from bastion.guard._principal import Principal
from bastion.guard.policy import RBAC, Requirement, authorize
from bastion.guard.request_id import request_id_of
from bastion.protocol.errors import CredentialNotAccepted, InvalidToken, MissingCredentials
from bastion.protocol.rfc6750 import ErrorResponse, extract_credentials, render_error

if TYPE_CHECKING:
    # Only a type here: importing audit would load SQLAlchemy into every API using the guard.
    from bastion.guard.audit import AuditLog

__all__ = ["ApiKeyVerifier", "RequestGuard", "refusal_reason"]

log = logging.getLogger("bastion.guard")

# The first words of an InvalidToken's detail, to the reason an operator reads in the log.
_TOKEN_REASONS = (
    ("expired", "expired"),
    ("not yet valid", "not_yet_valid"),
    ("issued in the future", "not_yet_valid"),
    ("audience", "audience"),
    ("looks like an ID token", "not_an_access_token"),
    ("typ not accepted", "not_an_access_token"),
    ("signature", "signature"),
    ("no trusted key", "unknown_key"),
    ("algorithm", "algorithm"),
    ("issuer not trusted", "issuer"),
    ("revoked", "revoked"),
    ("inactive", "inactive"),
    ("introspection failed", "introspection"),
)


def refusal_reason(error: Exception) -> str:
    """Why a request was refused, in one word for the debug log (`expired`, `audience`,
    `signature`, `issuer`, `revoked`, `malformed`, ...); the answer itself never says more than
    RFC 6750's code."""
    if isinstance(error, InvalidToken):
        detail = error.detail or ""
        for start, reason in _TOKEN_REASONS:
            if detail.startswith(start):
                return reason
        return "malformed"
    if isinstance(error, MissingCredentials):
        return "no_credentials"
    return str(getattr(error, "error", None) or "refused")


class ApiKeyVerifier(Protocol):
    """Something that turns a presented API key into a system principal."""

    def verify(self, presented: str) -> Principal | Awaitable[Principal]:
        """Raises InvalidApiKey when the key is not acceptable; a verifier that reads a database
        (`DatabaseApiKeyVerifier`) is a coroutine."""
        ...


class RequestGuard:
    """Authenticate and authorize one request against a route's Requirement."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        rbac: RBAC | None = None,
        api_keys: ApiKeyVerifier | None = None,
        realm: str = "api",
        api_key_header: str = "X-API-Key",
        audit: AuditLog | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.rbac = rbac
        self.api_keys = api_keys
        self.realm = realm
        self.api_key_header = api_key_header.lower().encode("latin-1")
        self.audit = audit

    def check_cached(self, requirement: Requirement, scope: Mapping[str, Any]) -> Principal | None:
        """`check` for the hot path of an ASGI request, when it can decide without I/O.

        The same checks as `check` (credentials read from the scope's headers, a token verified
        before re-checked against the clock and the denylist, then `authorize`) in one
        synchronous call, with no coroutine. A fast twin kept for its figure: the middleware
        costs 27,400 instructions per cached-token request with it and 30,900 without
        (callgrind), 0.3-0.5 us of 2.3-3.8 us of CPU (bench/guard_bench.py section 3), about
        11% of the guard's own cost. Pinned to `check` by
        tests/guard/test_middleware.py::test_check_cached_decides_as_check.

        Returns:
            The authorized principal, or None when this path cannot decide (public route, no
            or another credential, a malformed header, a token not verified before, stale
            keys): then await `check` for the answer, errors included.

        Raises:
            GuardError: the cached token's principal is not authorized (audited as by `check`).
        """
        if requirement.public or "token" not in requirement.accept:
            return None
        try:
            bearer = extract_credentials(scope["headers"], scope.get("query_string", b""), self.api_key_header)[0]
        except GuardError:
            return None  # `check` raises it again, and audits it
        if bearer is None:
            return None
        principal = self.authenticator.cached(bearer)
        if principal is None:
            return None
        try:
            authorize(principal, requirement, self.rbac)
        except GuardError as error:
            target = (scope["method"], scope["path"])
            self._refused(error, principal, target, request_id_of(scope))
            raise
        return principal

    async def check(
        self,
        requirement: Requirement,
        headers: Sequence[tuple[bytes, bytes]],
        query_string: bytes,
        *,
        target: tuple[str, str] | None = None,
        request_id: str | None = None,
    ) -> Principal | None:
        """The authorized principal (None for a public route).

        `target` is (method, path). Refusals are recorded in the audit trail when one is
        configured (a request with no
        credentials at all is not: that is ordinary traffic, not an attempt).

        Raises:
            GuardError: the request is refused.
        """
        if requirement.public:
            return None
        principal: Principal | None = None
        try:
            principal = await self._authenticate(requirement, headers, query_string)
            authorize(principal, requirement, self.rbac)
        except GuardError as error:
            self._refused(error, principal, target, request_id)
            raise
        return principal

    def _refused(
        self,
        error: GuardError,
        principal: Principal | None,
        target: tuple[str, str] | None,
        request_id: str | None,
    ) -> None:
        if log.isEnabledFor(logging.DEBUG):
            # The reason stays here: the answer is the same for every bad token. Details name
            # claims and kids, never the token or a secret.
            log.debug(
                "guard refused %s request_id=%s reason=%s: %s",
                f"{target[0]} {target[1]}" if target else "a request",
                request_id or "-",
                refusal_reason(error),
                error.detail or error.error,
            )
        if self.audit is not None and not isinstance(error, MissingCredentials):
            self.audit.record(
                "request.refused",
                principal=principal,
                outcome="denied",
                object=f"{target[0]} {target[1]}" if target else None,
                request_id=request_id,
                details={"error": error.error or "unauthorized", "reason": error.detail},
            )

    async def _authenticate(
        self,
        requirement: Requirement,
        headers: Sequence[tuple[bytes, bytes]],
        query_string: bytes,
    ) -> Principal:
        bearer, api_key = extract_credentials(headers, query_string, self.api_key_header)
        if bearer is not None:
            if "token" not in requirement.accept:
                raise CredentialNotAccepted(
                    "This operation takes an API key, not an access token.", detail="token sent"
                )
            cached = self.authenticator.cached(bearer)
            principal = cached if cached is not None else await self.authenticator.authenticate_bearer(bearer)
        else:
            if "api_key" not in requirement.accept or self.api_keys is None:
                # An API key identifies a system, never a user: a route that needs a user's
                # token refuses it here, whatever scopes the key's system holds.
                raise CredentialNotAccepted(
                    "This operation needs a user's access token; API keys are not accepted.",
                    detail="api key sent",
                )
            verified = self.api_keys.verify(api_key or "")
            principal = verified if isinstance(verified, Principal) else await verified
        return principal

    def render(self, error: GuardError) -> ErrorResponse:
        """The RFC 6750 §3 answer for a refusal."""
        return render_error(error, realm=self.realm, token_endpoints=self.authenticator.token_endpoints())
