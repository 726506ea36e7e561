"""bastion.guard: protection for resource servers (any Python API), by any OIDC issuer.

A sans-I/O core under thin I/O wrappers. The token rules are the shared protocol core
(`bastion.protocol`: JOSE, RFC 9068 validation, RFC 6750 credentials and challenges, one error
tree), the same the authorization server applies; the guard adds the `BearerTokenValidator`'s
cache and denylist, the policy module, the `Authenticator` (discovery, JWKS refresh, revocation
feeds), Starlette/ASGI middleware and FastAPI dependencies. It never imports Bastion's server,
store, identity or keys packages.

FastAPI (the guide, docs/guard.md, runs this shape as a test)::

    from typing import Annotated
    from fastapi import FastAPI
    from bastion.guard import RBAC, Authenticator, Guard, IssuerConfig, Principal, RequestGuard

    authenticator = Authenticator([IssuerConfig("https://idp.example/.well-known/openid-configuration",
                                                audience="https://api.example")])
    guard = Guard(RequestGuard(authenticator, rbac=RBAC.from_mapping({"admin": ["things:admin"]})))
    app = FastAPI()
    guard.install(app)                       # before adding routes

    @app.get("/things")
    async def things(principal: Annotated[Principal, guard.require("things:read")]) -> list[str]: ...

Starlette (any ASGI app)::

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from bastion.guard import PUBLIC, GuardMiddleware, RouteRule, require_scopes

    rules = [RouteRule("/things", require_scopes("things:read")), RouteRule("/health", PUBLIC)]
    app = Starlette(routes=..., middleware=[Middleware(GuardMiddleware, guard=request_guard,
                                                       rules=rules)])

Either shape refuses to start while a route has no declared requirement (deny by default).
"""

from typing import TYPE_CHECKING, Any

from bastion.guard._authenticator import Authenticator, IssuerConfig, OpaqueTokenIntrospector, RevocationFeed
from bastion.guard._cache import VerifiedTokenCache
from bastion.guard._core import ApiKeyVerifier, RequestGuard
from bastion.guard._denylist import Denylist
from bastion.guard._errors import GuardError, UnprotectedRouteError, UnresolvedRateLimitKey
from bastion.guard._principal import Principal
from bastion.guard._validator import BearerTokenValidator
from bastion.guard.policy import (
    PUBLIC,
    RBAC,
    ObjectPolicy,
    Requirement,
    RoleRequired,
    all_of,
    any_of,
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

if TYPE_CHECKING:
    from bastion.guard.audit import AuditLog, JsonLinesSink, SqlAuditSink
    from bastion.guard.body import BodyLimitMiddleware
    from bastion.guard.dependencies import Guard
    from bastion.guard.headers import SecurityHeadersMiddleware
    from bastion.guard.middleware import WEBSOCKET, GuardMiddleware, RouteRule
    from bastion.guard.models import InputModel, OutputModel, RoleViews

# Exported by name but imported on first use: FastAPI, pydantic and SQLAlchemy are loaded only
# by an application that uses the shape that needs them.
_LAZY = {
    "AuditLog": "bastion.guard.audit",
    "JsonLinesSink": "bastion.guard.audit",
    "SqlAuditSink": "bastion.guard.audit",
    "BodyLimitMiddleware": "bastion.guard.body",
    "Guard": "bastion.guard.dependencies",
    "SecurityHeadersMiddleware": "bastion.guard.headers",
    "WEBSOCKET": "bastion.guard.middleware",
    "GuardMiddleware": "bastion.guard.middleware",
    "RouteRule": "bastion.guard.middleware",
    "InputModel": "bastion.guard.models",
    "OutputModel": "bastion.guard.models",
    "RoleViews": "bastion.guard.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion.guard' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_LEEWAY",
    "PUBLIC",
    "RBAC",
    "WEBSOCKET",
    "AccessToken",
    "ApiKeyVerifier",
    "AuditLog",
    "Authenticator",
    "BasicNotAccepted",
    "BearerTokenValidator",
    "BodyLimitMiddleware",
    "CredentialNotAccepted",
    "Credentials",
    "Denylist",
    "ErrorResponse",
    "Forbidden",
    "Guard",
    "GuardError",
    "GuardMiddleware",
    "InputModel",
    "InsufficientScope",
    "InvalidApiKey",
    "InvalidRequest",
    "InvalidToken",
    "IssuerConfig",
    "JsonLinesSink",
    "KeySet",
    "MissingCredentials",
    "NotFound",
    "ObjectPolicy",
    "OpaqueTokenIntrospector",
    "OutputModel",
    "Principal",
    "RequestGuard",
    "RequestIdMiddleware",
    "Requirement",
    "RevocationFeed",
    "RoleRequired",
    "RoleViews",
    "RouteRule",
    "SecurityHeadersMiddleware",
    "SqlAuditSink",
    "TrustedIssuer",
    "TrustedKey",
    "UnknownIssuer",
    "UnknownKey",
    "UnprotectedRouteError",
    "UnresolvedRateLimitKey",
    "VerifiedTokenCache",
    "all_of",
    "any_of",
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
