"""Checks on a revocation request (RFC 7009 §2.1)."""

from __future__ import annotations

from bastion.protocol.errors import UnauthorizedClient, UnsupportedTokenType

__all__ = ["TOKEN_TYPE_HINTS", "check_token_owner", "check_token_type_hint"]

# RFC 7009 §2.1 / §4.1.2: the two hints the registry starts with, both of which we issue.
TOKEN_TYPE_HINTS = frozenset({"access_token", "refresh_token"})


def check_token_type_hint(hint: str | None) -> None:
    """A hint is optional; an unknown one is refused (RFC 7009 §2.2.1 unsupported_token_type).

    Raises:
        UnsupportedTokenType: a hint we do not know.
    """
    if hint is not None and hint not in TOKEN_TYPE_HINTS:
        raise UnsupportedTokenType(f"token_type_hint {hint} is not supported")


def check_token_owner(token_client_id: object, client_id: str) -> None:
    """RFC 7009 §2.1: the server verifies that the token was issued to the client revoking it.

    Raises:
        UnauthorizedClient: the token belongs to another client.
    """
    if token_client_id != client_id:
        raise UnauthorizedClient("the token was not issued to this client")
