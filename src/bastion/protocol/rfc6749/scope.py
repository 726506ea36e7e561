"""Scope syntax and selection (RFC 6749 §3.3)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bastion.protocol.errors import InvalidRequest, InvalidScope

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), joined by single spaces.
_SCOPE_TOKEN = r"[\x21\x23-\x5B\x5D-\x7E]+"  # noqa: S105 - a regular expression, not a password
_SCOPE = re.compile(rf"{_SCOPE_TOKEN}( {_SCOPE_TOKEN})*")


def check_scope_syntax(scope: str) -> None:
    """Raise InvalidRequest unless `scope` is a valid RFC 6749 §3.3 scope string."""
    if not _SCOPE.fullmatch(scope):
        raise InvalidRequest("scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)")


def parse_scope(scope: str | None) -> tuple[str, ...]:
    """Split a scope string into its tokens, in order, without duplicates."""
    if scope is None:
        return ()
    check_scope_syntax(scope)
    return tuple(dict.fromkeys(scope.split(" ")))


def _within(requested: tuple[str, ...], allowed: tuple[str, ...], refusal: str) -> tuple[str, ...]:
    if not requested:
        return allowed
    outside = [token for token in requested if token not in allowed]
    if outside:
        raise InvalidScope(f"{refusal}: {' '.join(outside)}")
    return requested


def resolve_scope(requested: tuple[str, ...], allowed: Iterable[str]) -> tuple[str, ...]:
    """The granted scope: every requested token must be allowed; none requested means all allowed.

    Raises:
        InvalidScope: a requested scope is not allowed for this client.
    """
    return _within(requested, tuple(allowed), "scope not allowed for this client")


def narrowed_scope(requested: tuple[str, ...], original: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 6749 §6: a refresh may narrow the original scope, never widen it; none requested means
    the original scope.

    Raises:
        InvalidScope: a requested scope was not originally granted.
    """
    return _within(requested, original, "scope exceeds the original grant")
