"""The authorization request and response of the Authorization Code grant (RFC 6749 §4.1).

Validation happens in two steps, because errors go to different places (§4.1.2.1):
1. `select_redirect_uri`: the client and redirect URI. If these are wrong the user sees an
   error page and is never redirected (no open redirector, RFC 9700 §4.1).
2. `validate_authorization_request`: everything else; errors go back to the redirect URI with
   `error`, `state` and `iss` (RFC 9207, see `bastion.protocol.rfc9207`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bastion.protocol.errors import (
    InvalidRequest,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from bastion.protocol.rfc6749.scope import parse_scope, resolve_scope
from bastion.protocol.rfc7636 import check_challenge

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
_MAX_STATE = 2048


class ClientLike(Protocol):
    """What the rules need to know about a registered client."""

    @property
    def client_id(self) -> str: ...
    @property
    def is_public(self) -> bool: ...
    @property
    def redirect_uris(self) -> tuple[str, ...]: ...
    @property
    def grant_types(self) -> frozenset[str]: ...
    @property
    def scopes(self) -> tuple[str, ...]: ...


class InvalidRedirectUri(InvalidRequest):
    """The redirect URI is missing, unregistered or malformed: shown on a page, never redirected to."""


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    acr_values: tuple[str, ...] = ()

    @property
    def is_openid(self) -> bool:
        return OPENID in self.scope


def single_query_value(params: dict[str, list[str]], name: str) -> str | None:
    """One query value; repeats are invalid (§3.1), an empty value counts as absent."""
    values = params.get(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"parameter {name} is repeated")
    return values[0] if values and values[0] != "" else None


def _is_loopback_ip(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_matches(requested: str, registered: str) -> bool:
    """Exact string match (RFC 9700 §4.1.3), except that a loopback IP redirect URI may use any
    port (RFC 8252 §7.3): native apps listen on an ephemeral port."""
    if requested == registered:
        return True
    req, reg = urlsplit(requested), urlsplit(registered)
    if req.scheme != "http" or reg.scheme != "http":
        return False
    if not _is_loopback_ip(req.hostname) or req.hostname != reg.hostname:
        return False
    try:
        req.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        return False
    return (req.path, req.query, req.fragment, req.username, req.password) == (
        reg.path,
        reg.query,
        reg.fragment,
        reg.username,
        reg.password,
    )


def select_redirect_uri(client: ClientLike, requested: str | None) -> str:
    """The redirect URI to use, which must be registered for the client.

    Raises:
        InvalidRedirectUri: missing, repeated, with a fragment, or not registered.
    """
    if requested is None:
        # RFC 9700 §2.1: redirect URIs are always registered and, here, always sent.
        raise InvalidRedirectUri("redirect_uri is required")
    if "#" in requested:
        raise InvalidRedirectUri("redirect_uri must not contain a fragment (RFC 6749 §3.1.2)")
    if not any(redirect_uri_matches(requested, registered) for registered in client.redirect_uris):
        raise InvalidRedirectUri("redirect_uri is not registered for this client")
    return requested


def check_response_type(response_type: str | None) -> None:
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        # RFC 9700 §2.1.2: the implicit grant and token-bearing hybrid flows are not offered.
        raise UnsupportedResponseType(
            f"response_type {response_type} is not supported; use response_type=code "
            "(Authorization Code with PKCE, RFC 9700 §2.1.2)"
        )


def check_client_may_use_code(client: ClientLike) -> None:
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization_code grant")


def parse_prompt(raw: str | None) -> frozenset[str]:
    """OpenID Connect Core §3.1.2.1: space-separated; `none` stands alone."""
    if raw is None:
        return frozenset()
    values = frozenset(raw.split())
    unknown = values - PROMPTS
    if unknown:
        raise InvalidRequest(f"prompt value {sorted(unknown)[0]} is not supported")
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt=none must not be combined with other values")
    return values


def parse_max_age(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidRequest("max_age must be a non-negative integer number of seconds")
    return int(raw)


def pkce_required(client: ClientLike, *, nonce: str | None, scope: Collection[str], relaxed: bool) -> bool:
    """PKCE is required for public clients, and for confidential ones unless a per-client policy
    relaxes it for an OIDC client that sends a nonce (RFC 9700 §2.1.1)."""
    if client.is_public or not relaxed:
        return True
    return not (nonce is not None and OPENID in scope)


def validate_authorization_request(
    params: dict[str, list[str]],
    client: ClientLike,
    redirect_uri: str,
    *,
    relax_pkce: Callable[[ClientLike], bool] = lambda client: False,
) -> AuthorizationRequest:
    """Validate an authorization request whose client and redirect URI are already known good.

    Raises:
        OAuthError: to be sent back to the redirect URI (see `error_response_uri`).
    """
    check_response_type(single_query_value(params, "response_type"))
    check_client_may_use_code(client)
    # OpenID Connect Core §6: request objects are optional; we answer as §6.3 says.
    if single_query_value(params, "request") is not None:
        raise RequestNotSupported("the request parameter is not supported")
    if single_query_value(params, "request_uri") is not None:
        raise RequestUriNotSupported("the request_uri parameter is not supported")
    state = single_query_value(params, "state")
    if state is not None and len(state) > _MAX_STATE:
        raise InvalidRequest(f"state is longer than {_MAX_STATE} characters")
    scope = resolve_scope(parse_scope(single_query_value(params, "scope")), client.scopes)
    nonce = single_query_value(params, "nonce")
    challenge = check_challenge(
        single_query_value(params, "code_challenge"),
        single_query_value(params, "code_challenge_method"),
        required=pkce_required(client, nonce=nonce, scope=scope, relaxed=relax_pkce(client)),
    )
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        prompt=parse_prompt(single_query_value(params, "prompt")),
        max_age=parse_max_age(single_query_value(params, "max_age")),
        login_hint=single_query_value(params, "login_hint"),
        # OpenID Connect Core §3.1.2.1: requested authentication context classes, in order.
        acr_values=tuple((single_query_value(params, "acr_values") or "").split()),
    )


def response_uri(redirect_uri: str, params: dict[str, str | None]) -> str:
    """The redirect URI with `params` added to its query (RFC 6749 §4.1.2: keep its own query)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))

