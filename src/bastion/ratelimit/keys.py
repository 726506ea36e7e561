"""Key functions: which request attributes a policy counts together.

The middleware reads identities that authentication set earlier in the ASGI scope's `state`
(Starlette's `request.state`): `client_id`, `sub`, `api_key_id` and `device` (a browser the
server recognises, e.g. by its sign-in device cookie); the source address comes
from the connection and the route from the path. A policy whose attributes are missing does
not apply to the request (an anonymous request is not counted per `sub`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from bastion.ratelimit.policy import KeyPart

Scope = Mapping[str, Any]
KeyFunction = Callable[[Scope], str | None]


def _state(name: str) -> KeyFunction:
    def read(scope: Scope) -> str | None:
        value = scope.get("state", {}).get(name)
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
