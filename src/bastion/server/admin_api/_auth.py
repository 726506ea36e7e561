"""Who may call the admin API: a caller presenting one of our own access tokens (validated in
process by the RFC 9068 rules every resource server applies) that carries the admin scope, the
`admin` role (in the token and still in the user's record), and a second factor (RFC 9470).

Refusals are RFC 6750 §3 challenges: 401 invalid_token, 403 insufficient_scope, 403 forbidden
for the role, and 401 insufficient_user_authentication with the `acr_values` to ask for
(RFC 9470 §3) when the sign-in behind the token had no second factor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import users
from bastion.protocol.errors import InsufficientScope, InvalidToken, OAuthError
from bastion.protocol.oidc import ACR_MFA
from bastion.protocol.rfc6750 import extract_credentials, render_error
from bastion.server.admin import Actor
from bastion.server.context import ServerContext
from bastion.server.responses import NO_STORE, json_response
from bastion.server.tokens import read_access_token

ADMIN_SCOPE = "bastion:admin"
ADMIN_ROLE = "admin"
REALM = "bastion-admin"
ENDPOINT = "/admin"


class InsufficientUserAuthentication(OAuthError):
    """RFC 9470 §3: the token is valid but the authentication behind it is too weak."""

    error = "insufficient_user_authentication"
    status_code = 401

    def __init__(self, acr_values: str, *, detail: str | None = None) -> None:
        super().__init__("A sign-in with a second factor is required for the admin API.", detail=detail)
        self.acr_values = acr_values


class MissingAdminRole(OAuthError):
    """Authenticated and scoped, but not an administrator (the role is not a token error)."""

    error = "forbidden"
    status_code = 403

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The {ADMIN_ROLE} role is required. A token carries roles only when the roles scope was requested.",
            detail=detail,
        )


def _second_factor(claims: Mapping[str, Any]) -> bool:
    amr = claims.get("amr")
    return claims.get("acr") == ACR_MFA or (isinstance(amr, list) and "mfa" in amr)


async def authorize(ctx: ServerContext, request: Request) -> Actor:
    """The administrator behind the request's bearer token, or the RFC 6750 / RFC 9470 refusal."""
    bearer, _ = extract_credentials(request.scope["headers"], request.scope.get("query_string", b""))
    access = await read_access_token(ctx, bearer or "", endpoint=ENDPOINT) if bearer else None
    if access is None or await ctx.denylist.is_revoked(str(access.jti)):
        raise InvalidToken("not an active access token of ours")
    claims = access.claims
    if ADMIN_SCOPE not in str(claims.get("scope", "")).split():
        raise InsufficientScope((ADMIN_SCOPE,), detail="no admin scope")
    roles = claims.get("roles")
    user = await users.get_user(ctx.database, access.subject)
    in_token = isinstance(roles, list) and ADMIN_ROLE in roles
    if not in_token or user is None or not user.enabled or ADMIN_ROLE not in user.roles:
        raise MissingAdminRole("no admin role (in the token, from the roles scope, and in the user's record)")
    if not _second_factor(claims):
        raise InsufficientUserAuthentication(ACR_MFA, detail=f"acr {claims.get('acr')!r}")
    client_id = claims.get("client_id")
    return Actor(sub=access.subject, client_id=client_id if isinstance(client_id, str) else None, via="api")


def refusal(ctx: ServerContext, error: OAuthError) -> Response:
    """The RFC 6750 answer to a refused caller, with RFC 9470's `acr_values` when it applies."""
    rendered = render_error(error, realm=REALM, token_endpoints=[ctx.endpoint("/token")])
    headers = {**NO_STORE, **{name.lower(): value for name, value in rendered.headers}}
    if isinstance(error, InsufficientUserAuthentication):
        headers["www-authenticate"] += f', acr_values="{error.acr_values}"'
    return json_response(rendered.body, rendered.status_code, headers)
