"""bastion.guard: protection for resource servers (any Python API), by any OIDC issuer.

A sans-I/O core (`BearerTokenValidator`, the policy module) under thin I/O wrappers: the
`Authenticator` (discovery, JWKS refresh, revocation feeds), Starlette/ASGI middleware and
FastAPI dependencies. It never imports Bastion's server, store, identity or keys packages.

FastAPI::

    authenticator = Authenticator([IssuerConfig("https://idp/.well-known/openid-configuration",
                                                 audience="https://api.example")])
    guard = Guard(RequestGuard(authenticator, rbac=RBAC.from_mapping({"admin": ["x:admin"]})))
    app = FastAPI()
    guard.install(app)                       # before adding routes

    @app.get("/things")
    async def things(principal: Annotated[Principal, guard.require("things:read")]): ...

Starlette (any ASGI app)::

    rules = [RouteRule("/things", require_scopes("things:read")), RouteRule("/health", PUBLIC)]
    app = Starlette(routes=..., middleware=[Middleware(GuardMiddleware, guard=request_guard,
                                                       rules=rules)])

Either shape refuses to start while a route has no declared requirement (deny by default).
"""

from bastion.guard._authenticator import (
    Authenticator,
    IssuerConfig,
    OpaqueTokenIntrospector,
    RevocationFeed,
    discovery_matches,
)
from bastion.guard._cache import VerifiedTokenCache
from bastion.guard._core import ApiKeyVerifier, RequestGuard
from bastion.guard._denylist import Denylist
from bastion.guard._errors import (
    BasicNotAccepted,
    CredentialNotAccepted,
    Forbidden,
    GuardError,
    InsufficientScope,
    InvalidApiKey,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    NotFound,
    UnprotectedRouteError,
)
from bastion.guard._http import Credentials, ErrorResponse, extract_credentials, render_error
from bastion.guard._issuer import DEFAULT_LEEWAY, TrustedIssuer
from bastion.guard._keys import KeySet, TrustedKey, cache_lifetime, key_from_jwk, keyset_from_jwks
from bastion.guard._principal import AccessToken, Principal
from bastion.guard._validator import BearerTokenValidator, UnknownIssuer, UnknownKey
from bastion.guard.policy import (
    PUBLIC,
    RBAC,
    ObjectPolicy,
    Requirement,
    authorize,
    has_permission,
    is_owner,
    require_scopes,
    same_tenant,
)
from bastion.guard.request_id import RequestIdMiddleware, current_request_id

__all__ = [
    "DEFAULT_LEEWAY",
    "PUBLIC",
    "RBAC",
    "AccessToken",
    "ApiKeyVerifier",
    "Authenticator",
    "BasicNotAccepted",
    "BearerTokenValidator",
    "CredentialNotAccepted",
    "Credentials",
    "Denylist",
    "ErrorResponse",
    "Forbidden",
    "GuardError",
    "InsufficientScope",
    "InvalidApiKey",
    "InvalidRequest",
    "InvalidToken",
    "IssuerConfig",
    "KeySet",
    "MissingCredentials",
    "NotFound",
    "ObjectPolicy",
    "OpaqueTokenIntrospector",
    "Principal",
    "RequestGuard",
    "RequestIdMiddleware",
    "Requirement",
    "RevocationFeed",
    "TrustedIssuer",
    "TrustedKey",
    "UnknownIssuer",
    "UnknownKey",
    "UnprotectedRouteError",
    "VerifiedTokenCache",
    "authorize",
    "cache_lifetime",
    "current_request_id",
    "discovery_matches",
    "extract_credentials",
    "has_permission",
    "is_owner",
    "key_from_jwk",
    "keyset_from_jwks",
    "render_error",
    "require_scopes",
    "same_tenant",
]
