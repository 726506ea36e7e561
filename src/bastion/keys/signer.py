"""Signing JWS compact tokens (RFC 7515 §7.1) with one of our private keys, prepared once.

The verifying half lives in `bastion.protocol.jose`; signing needs the private key, so it lives
here, next to the keys.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt import InsecureKeyLengthWarning
from jwt.algorithms import Algorithm, ECAlgorithm
from jwt.utils import base64url_encode

from bastion.keys.keyring import SigningKey

__all__ = ["JwsSigner", "raw_ecdsa_signature"]


def raw_ecdsa_signature(der: bytes, size: int) -> bytes:
    """RFC 7518 §3.4: a JWS ECDSA signature is R || S, each `size` bytes, big-endian (what
    PyJWT's der_to_raw_signature makes of cryptography's DER signature)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


class JwsSigner:
    """One signing key made ready for one kind of token: the JOSE header (`header`, e.g.
    `access_token_header(kid)`) encoded once and the key prepared once by PyJWT's algorithm
    object. The tokens are byte for byte what `jwt.encode` makes with `headers=header`: same
    header (sorted keys), same payload JSON, provided `encode_claims` writes what
    `json.dumps(claims, separators=(",", ":"))` writes (the server passes its compact encoder).

    The signature is cryptography's: through the algorithm object for RSA, and for ECDSA with
    the algorithm's hash and one ECDSA instance, converted to R || S as PyJWT converts it.
    """

    def __init__(self, key: SigningKey, header: dict[str, str], encode_claims: Callable[[Any], str]) -> None:
        self.private_key = key.private_key
        self._encode_claims = encode_claims
        fields: dict[str, Any] = {"typ": "JWT", "alg": key.alg, **header}
        encoded = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
        self._prefix = base64url_encode(encoded) + b"."
        self._algorithm: Algorithm = jwt.get_algorithm_by_name(key.alg)
        self._key = self._algorithm.prepare_key(key.private_key)
        short = self._algorithm.check_key_length(self._key)
        if short:  # as `jwt.encode` warns (once per key here rather than once per token)
            warnings.warn(short, InsecureKeyLengthWarning, stacklevel=2)
        self._signature = self._signature_function()

    def _signature_function(self) -> Callable[[bytes], bytes]:
        # Chosen once: an isinstance check against cryptography's key ABCs costs more per token
        # than everything else here but the signature itself.
        algorithm, key = self._algorithm, self._key
        if isinstance(algorithm, ECAlgorithm) and isinstance(key, EllipticCurvePrivateKey):
            ecdsa, size = ECDSA(algorithm.hash_alg()), (key.curve.key_size + 7) // 8

            def ecdsa_signature(signing_input: bytes) -> bytes:
                return raw_ecdsa_signature(key.sign(signing_input, ecdsa), size)

            return ecdsa_signature

        def signature(signing_input: bytes) -> bytes:
            return algorithm.sign(signing_input, key)

        return signature

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = self._prefix + base64url_encode(self._encode_claims(claims).encode())
        return (signing_input + b"." + base64url_encode(self._signature(signing_input))).decode()
