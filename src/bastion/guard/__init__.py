"""bastion.guard: protection for resource servers (any Python API), by any OIDC issuer.

A sans-I/O core (`BearerTokenValidator`, the policy module) under thin I/O wrappers: the
`Authenticator` (discovery, JWKS refresh, revocation feeds), Starlette/ASGI middleware and
FastAPI dependencies. It never imports Bastion's server, store, identity or keys packages.
"""

from bastion.guard._authenticator import (
    Authenticator,
    IssuerConfig,
    OpaqueTokenIntrospector,
    discovery_matches,
)
from bastion.guard._cache import VerifiedTokenCache
from bastion.guard._denylist import Denylist
from bastion.guard._errors import (
    BasicNotAccepted,
    Forbidden,
    GuardError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    NotFound,
    UnprotectedRouteError,
)
from bastion.guard._issuer import DEFAULT_LEEWAY, TrustedIssuer
from bastion.guard._keys import KeySet, TrustedKey, cache_lifetime, key_from_jwk, keyset_from_jwks
from bastion.guard._principal import AccessToken, Principal
from bastion.guard._validator import BearerTokenValidator, UnknownIssuer, UnknownKey

__all__ = [
    "DEFAULT_LEEWAY",
    "AccessToken",
    "Authenticator",
    "BasicNotAccepted",
    "BearerTokenValidator",
    "Denylist",
    "Forbidden",
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "IssuerConfig",
    "KeySet",
    "MissingCredentials",
    "NotFound",
    "OpaqueTokenIntrospector",
    "Principal",
    "TrustedIssuer",
    "TrustedKey",
    "UnknownIssuer",
    "UnknownKey",
    "UnprotectedRouteError",
    "VerifiedTokenCache",
    "cache_lifetime",
    "discovery_matches",
    "key_from_jwk",
    "keyset_from_jwks",
]
