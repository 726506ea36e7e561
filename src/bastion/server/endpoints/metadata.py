"""Discovery: RFC 8414 authorization server metadata and the OpenID configuration document.

Only what is implemented is listed.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.keys.keyring import active_schedule
from bastion.protocol.jose import ASSERTION_ALGORITHMS, DEFAULT_ID_TOKEN_ALGORITHM, ID_TOKEN_ALGORITHMS
from bastion.protocol.oidc import ACR_MFA, ACR_PASSWORD, RESPONSE_MODES_SUPPORTED, SCOPE_CLAIMS
from bastion.protocol.rfc9207 import ISS_PARAMETER_SUPPORTED
from bastion.server.context import ServerContext
from bastion.server.endpoints.token import GRANTS
from bastion.server.responses import json_response

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access", "roles"]
CLAIMS_SUPPORTED = sorted(
    {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"}
    | {claim for claims in SCOPE_CLAIMS.values() for claim in claims}
)


def server_metadata(ctx: ServerContext) -> dict[str, Any]:
    return {
        "issuer": ctx.issuer,
        "token_endpoint": ctx.endpoint("/token"),
        "jwks_uri": ctx.endpoint("/jwks"),
        "grant_types_supported": sorted(GRANTS),
        "authorization_endpoint": ctx.endpoint("/authorize"),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES_SUPPORTED),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207 §3: every authorization response carries `iss`.
        ISS_PARAMETER_SUPPORTED: True,
        "scopes_supported": SCOPES_SUPPORTED,
        "token_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGORITHMS),
        "introspection_endpoint": ctx.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGORITHMS),
        "revocation_endpoint": ctx.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGORITHMS),
        "access_token_signing_alg_values_supported": [ctx.settings.access_token_algorithm],
        # RFC 8628 §4.
        "device_authorization_endpoint": ctx.endpoint("/device_authorization"),
    }


async def id_token_algorithms(ctx: ServerContext) -> list[str]:
    """RS256 always (OpenID Connect Discovery 1.0 §3: it MUST be listed; `serve` requires its key),
    then each other algorithm a client may register for which a key signs now: a client can only
    get ID tokens of an algorithm with an active key."""
    keys = await ctx.keyring.published_keys()
    now = int(time.time())
    others = [alg for alg in ID_TOKEN_ALGORITHMS[1:] if active_schedule(keys, alg, now) is not None]
    return [DEFAULT_ID_TOKEN_ALGORITHM, *others]


async def openid_metadata(ctx: ServerContext) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 on top of RFC 8414."""
    return {
        **server_metadata(ctx),
        "userinfo_endpoint": ctx.endpoint("/userinfo"),
        "end_session_endpoint": ctx.endpoint("/logout"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": await id_token_algorithms(ctx),
        "claims_supported": CLAIMS_SUPPORTED,
        # OpenID Connect Discovery 1.0 §3: the classes a client may ask for with `acr_values` and
        # find in `acr` (README, "Enable MFA").
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


async def oauth_metadata_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    return json_response(server_metadata(ctx), headers={"cache-control": "public, max-age=300"})


async def openid_configuration_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    return json_response(await openid_metadata(ctx), headers={"cache-control": "public, max-age=300"})
