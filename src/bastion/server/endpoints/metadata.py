"""Discovery: RFC 8414 authorization server metadata and the OpenID configuration document.

Only what is implemented is listed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.protocol.rfc7523 import ASSERTION_ALGORITHMS
from bastion.server.context import ServerContext
from bastion.server.endpoints.token import GRANTS
from bastion.server.responses import json_response

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def server_metadata(ctx: ServerContext) -> dict[str, Any]:
    return {
        "issuer": ctx.issuer,
        "token_endpoint": ctx.endpoint("/token"),
        "jwks_uri": ctx.endpoint("/jwks"),
        "grant_types_supported": sorted(GRANTS),
        # RFC 8414 §2 makes this REQUIRED; no authorization endpoint exists yet, so none.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGORITHMS),
        "introspection_endpoint": ctx.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGORITHMS),
        "revocation_endpoint": ctx.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGORITHMS),
        "access_token_signing_alg_values_supported": [ctx.settings.access_token_algorithm],
    }


async def oauth_metadata_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    return json_response(server_metadata(ctx), headers={"cache-control": "public, max-age=300"})


async def openid_configuration_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    return json_response(server_metadata(ctx), headers={"cache-control": "public, max-age=300"})
