"""Reading credentials from an HTTP request and rendering refusals, without a web framework.

Both shapes (ASGI middleware and FastAPI dependencies) call these two functions, so their
answers are byte-for-byte the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from bastion.guard._errors import (
    BasicNotAccepted,
    CredentialNotAccepted,
    GuardError,
    InsufficientScope,
    InvalidApiKey,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
)

__all__ = ["B64TOKEN", "Credentials", "ErrorResponse", "extract_credentials", "read_credentials", "render_error"]

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_MAX_API_KEY_LENGTH = 512


class Credentials(NamedTuple):
    """What the request presented: a bearer token, an API key, or neither.

    A bearer token here is only known to be one word: its b64token syntax is checked by the
    authenticator on a cache miss (a JWS must match a stricter pattern anyway), so the hot path
    of a cached token runs no regular expression over it.
    """

    bearer: str | None = None
    api_key: str | None = None


def extract_credentials(
    headers: Iterable[tuple[bytes, bytes]], query_string: bytes, api_key_header: bytes
) -> Credentials:
    """Find the request's credentials in its headers (RFC 6750 §2.1 only).

    Raises:
        MissingCredentials: nothing usable (a token in the query string counts as nothing).
        BasicNotAccepted: HTTP Basic was sent.
        InvalidRequest: more than one credential, or a token sent two ways (RFC 6750 §2).
        InvalidToken: an Authorization: Bearer header that is not a b64token.
    """
    return Credentials(*read_credentials(headers, query_string, api_key_header))


def read_credentials(
    headers: Iterable[tuple[bytes, bytes]], query_string: bytes, api_key_header: bytes
) -> tuple[str | None, str | None]:
    """`extract_credentials` as a plain (bearer, api_key) tuple, for the per-request hot path.

    Raises:
        GuardError: as `extract_credentials`.
    """
    authorization: bytes | None = None
    api_key: bytes | None = None
    count = 0
    # ASGI servers should lowercase header names but need not: compare case-insensitively.
    # bytes.lower() keeps the length, so only names as long as one of ours are lowered (a
    # len() costs far less than a lower(), which builds a new bytes object per header).
    sizes = (13, len(api_key_header))  # 13 == len(b"authorization")
    for name, value in headers:
        if len(name) in sizes:
            lowered = name.lower()
            if lowered == b"authorization":
                authorization = value
                count += 1
            elif lowered == api_key_header:
                api_key = value
                count += 1
    # RFC 6750 §2.3 tokens are refused: a query token is ignored, and alongside a header it
    # is a second method, which RFC 6750 §2 forbids.
    query_token = False
    if query_string and b"access_token" in query_string:
        query_token = any(k == "access_token" for k, _ in parse_qsl(query_string.decode("latin-1")))
    if count > 1:
        raise InvalidRequest("Send exactly one credential.", detail="several credentials")
    if query_token and count:
        raise InvalidRequest(
            "Send the access token in the Authorization header only.",
            detail="token in query string and header",
        )
    if api_key is not None:
        key = api_key.decode("latin-1").strip()
        if not key or len(key) > _MAX_API_KEY_LENGTH:
            raise MissingCredentials(detail="empty or oversized API key")
        return None, key
    if authorization is None:
        raise MissingCredentials(detail="query token" if query_token else "no credentials")
    if authorization[:7] == b"Bearer ":
        # The common spelling: the same token as the general case below gives, with one
        # string built instead of three.
        token = authorization[7:].decode("latin-1").rstrip().lstrip(" ")
    else:
        scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            raise BasicNotAccepted(detail="basic auth")
        if scheme != "bearer":
            raise MissingCredentials(detail=f"unsupported scheme {scheme!r}")
        token = token.lstrip(" ")
    if not token or " " in token or "\t" in token:
        raise InvalidToken("malformed Authorization header")
    return token, None


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


def render_error(error: GuardError, *, realm: str, token_endpoints: Sequence[str] = ()) -> ErrorResponse:
    """Turn a refusal into its RFC 6750 §3 answer."""
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
