"""Key functions: which request attributes a policy counts together.

The middleware reads identities that authentication set earlier in the ASGI scope's `state`
(Starlette's `request.state`): `client_id`, `sub`, `api_key_id` and `device` (a browser the
server recognises, e.g. by its sign-in device cookie), or the principal `bastion.guard` set
there (`state["principal"]`: its `subject`, `client_id` and `api_key_id`); the source address
comes from the connection and the route from the path. A policy whose attributes are missing
does not apply to the request (an anonymous request is not counted per `sub`).

Identities exist only after authentication: `IDENTITY_PARTS` are resolved by something that
runs before the limiter (`RESOLVES`, see `RateLimitMiddleware`), never by the limiter itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from bastion.ratelimit.policy import KeyPart

Scope = Mapping[str, Any]
KeyFunction = Callable[[Scope], str | None]


# The attribute of the guard's principal each identity is read from (duck-typed: the limiter
# does not import the guard).
_PRINCIPAL_ATTRIBUTES: Final[Mapping[str, str]] = {
    "sub": "subject",
    "client_id": "client_id",
    "api_key_id": "api_key_id",
}
IDENTITY_PARTS: Final[frozenset[KeyPart]] = frozenset({"client_id", "sub", "api_key_id", "device"})
"""Key parts that only authentication can resolve (the others come from the connection)."""

RESOLVES: Final = "resolves_rate_limit_keys"
"""The attribute by which an ASGI middleware class declares the identity key parts it sets in
the scope's state before calling the next application (`GuardMiddleware` sets `sub`,
`client_id` and `api_key_id`); on a Starlette app's `state`, it marks an app guarded by other
means (FastAPI dependencies, which run after every middleware: an empty set)."""


def _state(name: str) -> KeyFunction:
    attribute = _PRINCIPAL_ATTRIBUTES.get(name)

    def read(scope: Scope) -> str | None:
        state = scope.get("state") or {}
        value = state.get(name)
        if value is None and attribute is not None:
            value = getattr(state.get("principal"), attribute, None)
        return None if value is None else str(value)

    read.__name__ = f"{name}_key"
    return read


def source_address_key(scope: Scope) -> str | None:
    """The peer address; put a proxy-headers middleware in front when behind a proxy."""
    client = scope.get("client")
    return None if not client else str(client[0])


def route_key(scope: Scope) -> str | None:
    """Method and path, so one route's flood does not spend another route's allowance."""
    return f"{scope.get('method', '')} {scope.get('path', '')}"


KEY_FUNCTIONS: Final[Mapping[KeyPart, KeyFunction]] = {
    "client_id": _state("client_id"),
    "sub": _state("sub"),
    "api_key_id": _state("api_key_id"),
    "source_address": source_address_key,
    "route": route_key,
    "device": _state("device"),
}


def compose_key(
    parts: Sequence[KeyPart], scope: Scope, functions: Mapping[KeyPart, KeyFunction] = KEY_FUNCTIONS
) -> str | None:
    """The combined key of `parts` for this request, or None when one of them is missing.

    Parts are joined with a separator that cannot occur in a source address or a route, and
    each value's length is prefixed, so ("a|b", "c") and ("a", "b|c") never collide.
    """
    values: list[str] = []
    for part in parts:
        value = functions[part](scope)
        if value is None:
            return None
        values.append(f"{len(value)}:{value}")
    return "|".join(values)
