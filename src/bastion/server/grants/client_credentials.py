"""Client Credentials grant (RFC 6749 §4.4), issuing RFC 9068 JWT access tokens."""

from __future__ import annotations

from typing import Any

from bastion.events import audit
from bastion.protocol.errors import UnauthorizedClient
from bastion.protocol.rfc6749.params import single
from bastion.protocol.rfc6749.scope import parse_scope, resolve_scope
from bastion.protocol.rfc8707 import select_audience
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.tokens import issue_access_token

GRANT_TYPE = "client_credentials"


async def client_credentials_grant(ctx: ServerContext, client: Client, params: dict[str, list[str]]) -> dict[str, Any]:
    # RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential clients."
    if client.is_public:
        raise UnauthorizedClient("public clients may not use the client_credentials grant")
    scope = resolve_scope(parse_scope(single(params, "scope")), client.scopes)
    # RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    resources = [resource for resource in params.get("resource", []) if resource]
    audience = select_audience(resources, client.audiences, ctx.settings.audience)
    token, expires_in, claims = await issue_access_token(
        ctx, client, subject=client.client_id, audience=audience, scope=scope
    )
    audit(
        "token_issued",
        client_id=client.client_id,
        grant_type=GRANT_TYPE,
        jti=claims.jti,
        aud=audience,
        scope=" ".join(scope),
    )
    response: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    if scope:
        response["scope"] = " ".join(scope)
    return response
