"""Rendering a refusal as its RFC 6750 §3 answer: the `WWW-Authenticate: Bearer` challenge and a
JSON body, for the guard and for the authorization server's userinfo endpoint alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.protocol.errors import (
    BasicNotAccepted,
    CredentialNotAccepted,
    InsufficientScope,
    InvalidApiKey,
    MissingCredentials,
    OAuthError,
)

__all__ = ["ErrorResponse", "render_error"]


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """A refusal ready to send: status, headers and a JSON body."""

    status_code: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    def body_bytes(self) -> bytes:
        """The JSON body, compact."""
        return json.dumps(self.body, separators=(",", ":")).encode()


def _basic_description(token_endpoints: Sequence[str]) -> str:
    where = (
        "from the token endpoint " + " or ".join(token_endpoints)
        if token_endpoints
        else "from the authorization server's token endpoint"
    )
    return (
        "HTTP Basic authentication is not accepted. Send an OAuth 2.0 access token as "
        f"'Authorization: Bearer <token>'; obtain one {where}."
    )


def render_error(error: OAuthError, *, realm: str, token_endpoints: Sequence[str] = ()) -> ErrorResponse:
    """Turn a refusal into its RFC 6750 §3 answer (`realm` names the protected space, §3)."""
    challenge = f'Bearer realm="{realm}"'
    body: dict[str, Any] = {}
    if isinstance(error, MissingCredentials):
        # RFC 6750 §3.1: no credentials, so no error code in the challenge.
        body["error_description"] = "Authentication required: send 'Authorization: Bearer <token>'."
    elif isinstance(error, BasicNotAccepted):
        body["error_description"] = _basic_description(token_endpoints)
    elif isinstance(error, InvalidApiKey | CredentialNotAccepted):
        # Not a bearer-token failure: the challenge stays bare, the body says what went wrong.
        body = {"error": error.error, "error_description": error.description}
    elif error.status_code in (400, 401) or isinstance(error, InsufficientScope):
        challenge += f', error="{error.error}", error_description="{error.description}"'
        body = {"error": error.error, "error_description": error.description}
        if isinstance(error, InsufficientScope):
            scope = " ".join(error.scope)
            challenge += f', scope="{scope}"'
            body["scope"] = scope
    else:
        # 403 for missing entitlements and 404 for hidden objects are not token errors.
        body = {"error": error.error, "error_description": error.description}
        return ErrorResponse(error.status_code, [], body)
    return ErrorResponse(error.status_code, [("WWW-Authenticate", challenge)], body)
