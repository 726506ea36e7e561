"""bastion.guard: protection for resource servers (any Python API), by any OIDC issuer.

A sans-I/O core under thin I/O wrappers. The token rules are the shared protocol core
(`bastion.protocol`: JOSE, RFC 9068 validation, RFC 6750 credentials and challenges, one error
tree), the same the authorization server applies; the guard adds the `BearerTokenValidator`'s
cache and denylist, the policy module, the `Authenticator` (discovery, JWKS refresh, revocation
feeds), Starlette/ASGI middleware and FastAPI dependencies. It never imports Bastion's server,
store, identity or keys packages.

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

from bastion.guard._authenticator import Authenticator, IssuerConfig, OpaqueTokenIntrospector, RevocationFeed
from bastion.guard._cache import VerifiedTokenCache
from bastion.guard._core import ApiKeyVerifier, RequestGuard
from bastion.guard._denylist import Denylist
from bastion.guard._errors import GuardError, UnprotectedRouteError
from bastion.guard._principal import Principal
from bastion.guard._validator import BearerTokenValidator
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
from bastion.protocol.errors import (
    BasicNotAccepted,
    CredentialNotAccepted,
    Forbidden,
    InsufficientScope,
    InvalidApiKey,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    NotFound,
)
from bastion.protocol.jose import KeySet, TrustedKey, cache_lifetime, key_from_jwk, keyset_from_jwks
from bastion.protocol.rfc6750 import Credentials, ErrorResponse, extract_credentials, render_error
from bastion.protocol.rfc8414 import discovery_matches
from bastion.protocol.rfc9068 import DEFAULT_LEEWAY, AccessToken, TrustedIssuer, UnknownIssuer, UnknownKey

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
