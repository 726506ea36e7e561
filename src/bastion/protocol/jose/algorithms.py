"""The JWS algorithm tables (RFC 7518 §3), in one place for every token Bastion reads or signs.

RFC 8725 §3.1 / §3.2: only asymmetric algorithms are ever accepted; `none` and HMAC (a shared
secret, and the RS/HS key-confusion attack, CVE-2016-10555) are refused for access tokens,
client assertions and ID tokens alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from jwt.algorithms import Algorithm, get_default_algorithms

__all__ = [
    "ASSERTION_ALGORITHMS",
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ID_TOKEN_ALGORITHM",
    "EC_CURVE_ALGORITHMS",
    "ID_TOKEN_ALGORITHMS",
    "RSA_ALGORITHMS",
    "hash_function",
]

_ALL = get_default_algorithms()

# RFC 7518 §3.3-§3.5 and RFC 8037 §3.1: the asymmetric JWS algorithms, with PyJWT's primitive
# for each (the key is prepared once per JWK, see `keys`): what an access token (RFC 9068 §4)
# or an ID token hint may be signed with.
ASYMMETRIC_ALGORITHMS: Mapping[str, Algorithm] = {
    name: _ALL[name]
    for name in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
    if name in _ALL
}
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
# RFC 7518 §3.4: each ECDSA algorithm is bound to one curve.
EC_CURVE_ALGORITHMS: Mapping[str, str] = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

# RFC 7523 §3 private_key_jwt client assertions.
ASSERTION_ALGORITHMS = frozenset(ASYMMETRIC_ALGORITHMS)
# OpenID Connect Registration 1.0 §2 id_token_signed_response_alg: what this server signs ID
# tokens with. RS256 first: always available and the default (OpenID Connect Core §15.1,
# Discovery 1.0 §3); a client may register another for which the server has keys.
DEFAULT_ID_TOKEN_ALGORITHM = "RS256"  # noqa: S105 - an algorithm name, not a password
ID_TOKEN_ALGORITHMS = (DEFAULT_ID_TOKEN_ALGORITHM, "PS256", "ES256")

# RFC 7518 §3.2-§3.5: the SHA-2 function is named by the algorithm's last three digits.
_HASHES: Mapping[str, Callable[[bytes], hashlib._Hash]] = {
    "256": hashlib.sha256,
    "384": hashlib.sha384,
    "512": hashlib.sha512,
}


def hash_function(alg: str) -> Callable[[bytes], hashlib._Hash]:
    """The hash an algorithm uses (RS256 -> SHA-256), e.g. for OpenID Connect's at_hash.

    Raises:
        KeyError: an algorithm without a SHA-2 suffix (EdDSA).
    """
    return _HASHES[alg[-3:]]
