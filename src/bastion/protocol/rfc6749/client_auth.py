"""Which credentials a request presents for client authentication (RFC 6749 §2.3, RFC 7521 §4.2).

This module only extracts and classifies; verification needs the client registry and keys and
lives in the server.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_plus

from bastion.protocol.errors import InvalidClient, InvalidRequest
from bastion.protocol.rfc6749.params import single

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


@dataclass(frozen=True)
class ClientCredentials:
    """What the request offered. `secret` and `assertion` never appear in a repr."""

    method: AuthMethod
    client_id: str | None
    secret: str | None = field(default=None, repr=False)
    assertion: str | None = field(default=None, repr=False)


def parse_basic_authorization(header: str) -> tuple[str, str]:
    """Decode `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).

    Raises:
        InvalidClient: the header is not well-formed Basic credentials (401 with a challenge).
    """
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise InvalidClient("malformed Basic authorization header", used_basic=True)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient("malformed Basic authorization header", detail=str(exc), used_basic=True) from exc
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon or not raw_id:
        raise InvalidClient("malformed Basic authorization header", used_basic=True)
    return unquote_plus(raw_id), unquote_plus(raw_secret)


def extract_client_credentials(authorization: str | None, params: dict[str, list[str]]) -> ClientCredentials:
    """Classify the client authentication the request uses.

    RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each request."

    Raises:
        InvalidRequest: more than one method, or an assertion of an unknown type.
        InvalidClient: no client identification at all, or malformed Basic credentials.
    """
    body_id = single(params, "client_id")
    body_secret = single(params, "client_secret")
    assertion = single(params, "client_assertion")
    assertion_type = single(params, "client_assertion_type")
    uses_basic = authorization is not None and authorization.strip().lower().startswith("basic")
    methods = [uses_basic, body_secret is not None, assertion is not None or assertion_type is not None]
    if sum(methods) > 1:
        raise InvalidRequest("use exactly one client authentication method (RFC 6749 §2.3)")
    if uses_basic and authorization is not None:
        client_id, secret = parse_basic_authorization(authorization)
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id in the body does not match the Authorization header")
        return ClientCredentials("client_secret_basic", client_id, secret=secret)
    if body_secret is not None:
        if body_id is None:
            raise InvalidRequest("client_secret requires client_id")
        return ClientCredentials("client_secret_post", body_id, secret=body_secret)
    if assertion is not None or assertion_type is not None:
        if assertion_type != JWT_BEARER_ASSERTION:
            raise InvalidRequest(f"client_assertion_type must be {JWT_BEARER_ASSERTION}")
        if assertion is None:
            raise InvalidRequest("parameter client_assertion is required")
        return ClientCredentials("private_key_jwt", body_id, assertion=assertion)
    if body_id is None:
        raise InvalidClient("client authentication is required")
    return ClientCredentials("none", body_id)
