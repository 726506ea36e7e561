"""JOSE: JSON Web Signature, Key and Algorithms, as far as Bastion reads and verifies them.

- RFC 7515 (JWS): https://www.rfc-editor.org/rfc/rfc7515 (compact serialization, §7.1)
- RFC 7517 (JWK): https://www.rfc-editor.org/rfc/rfc7517 (keys and key sets, §4, §5)
- RFC 7518 (JWA): https://www.rfc-editor.org/rfc/rfc7518 (the algorithm tables, §3)
- RFC 8725 (JWT BCP): https://www.rfc-editor.org/rfc/rfc8725 (asymmetric algorithms only, §3.1)

Compact-JWS splitting and decoding (bounded size, duplicate header members refused), the
algorithm tables for access tokens, client assertions and ID tokens, trusted keys prepared once
per JWK, and signature verification with them. Pure computation over PyJWT's and
cryptography's primitives; signing lives with the private keys (`bastion.keys.signer`).
"""

from bastion.protocol.jose.algorithms import (
    ASSERTION_ALGORITHMS,
    ASYMMETRIC_ALGORITHMS,
    DEFAULT_ID_TOKEN_ALGORITHM,
    ID_TOKEN_ALGORITHMS,
    hash_function,
)
from bastion.protocol.jose.compact import (
    MAX_TOKEN_LENGTH,
    CompactJWS,
    b64url_decode,
    decode_header,
    decode_object,
    looks_like_jws,
    parse_compact,
    split_compact,
)
from bastion.protocol.jose.headers import HEADER_CHECKS, HeaderCheck
from bastion.protocol.jose.keys import KeySet, TrustedKey, cache_lifetime, key_from_jwk, keyset_from_jwks

__all__ = [
    "ASSERTION_ALGORITHMS",
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ID_TOKEN_ALGORITHM",
    "HEADER_CHECKS",
    "ID_TOKEN_ALGORITHMS",
    "MAX_TOKEN_LENGTH",
    "CompactJWS",
    "HeaderCheck",
    "KeySet",
    "TrustedKey",
    "b64url_decode",
    "cache_lifetime",
    "decode_header",
    "decode_object",
    "hash_function",
    "key_from_jwk",
    "keyset_from_jwks",
    "looks_like_jws",
    "parse_compact",
    "split_compact",
]
