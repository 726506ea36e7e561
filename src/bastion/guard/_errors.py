"""The guard's refusals are the protocol's errors (`bastion.protocol.errors`), under one base.

`GuardError` is kept as a name because applications catch it (`except GuardError`) and register
handlers for it: it is the base `OAuthError` itself, not a subclass, because the guard raises
shared errors (`InvalidRequest`, `InvalidToken`) that a subclass would leave outside it.
"""

from __future__ import annotations

from bastion.protocol.errors import OAuthError

__all__ = ["GuardError", "UnprotectedRouteError", "UnresolvedRateLimitKey"]

GuardError = OAuthError


class UnprotectedRouteError(RuntimeError):
    """Raised at start-up when a route declares no requirement and is not marked public."""


class UnresolvedRateLimitKey(RuntimeError):
    """Raised at start-up when a per-caller rate limit sits on a route no requirement authenticates."""
