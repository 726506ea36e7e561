"""Minting our JWT access tokens (RFC 9068) and reading them back for introspection/revocation."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt import InsecureKeyLengthWarning
from jwt.algorithms import Algorithm, ECAlgorithm
from jwt.utils import base64url_encode

from bastion.keys import SigningKey
from bastion.protocol.errors import ServerError
from bastion.protocol.rfc9068 import ACCESS_TOKEN_TYP, AccessTokenClaims, access_token_header
from bastion.server.audit import compact_json
from bastion.server.clients import Client
from bastion.server.context import ServerContext

# PyJWT's payload encoding (`json.dumps(payload, separators=(",", ":"))`), built once.
_ENCODE_CLAIMS = compact_json()


def raw_ecdsa_signature(der: bytes, size: int) -> bytes:
    """RFC 7518 §3.4: a JWS ECDSA signature is R || S, each `size` bytes, big-endian (what
    PyJWT's der_to_raw_signature makes of cryptography's DER signature)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


class JwsSigner:
    """One signing key made ready for one kind of token: the JOSE header (`header`, e.g.
    `access_token_header(kid)`) encoded once and the key prepared once by PyJWT's algorithm
    object. The tokens are byte for byte what `jwt.encode` makes with `headers=header`: same
    header (sorted keys), same payload JSON.

    The signature is cryptography's: through the algorithm object for RSA, and for ECDSA with
    the algorithm's hash and one ECDSA instance, converted to R || S as PyJWT converts it.
    """

    def __init__(self, key: SigningKey, header: dict[str, str]) -> None:
        self.private_key = key.private_key
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
        signing_input = self._prefix + base64url_encode(_ENCODE_CLAIMS(claims).encode())
        return (signing_input + b"." + base64url_encode(self._signature(signing_input))).decode()


_SIGNERS: dict[tuple[str, str], JwsSigner] = {}


def jws_signer(key: SigningKey, kind: str, header: Callable[[str], dict[str, str]]) -> JwsSigner:
    """The signer of `key` for one kind of token (`header(kid)` its JOSE header), made once per
    key and kind (and again if the kid's key object changes)."""
    signer = _SIGNERS.get((key.kid, kind))
    if signer is None or signer.private_key is not key.private_key:
        if len(_SIGNERS) > 64:
            _SIGNERS.clear()
        signer = _SIGNERS[key.kid, kind] = JwsSigner(key, header(key.kid))
    return signer


def access_token_signer(key: SigningKey) -> JwsSigner:
    return jws_signer(key, "access_token", access_token_header)


async def issue_access_token(
    ctx: ServerContext,
    client: Client,
    *,
    subject: str,
    audience: str,
    scope: tuple[str, ...],
    extra: dict[str, Any] | None = None,
) -> tuple[str, int, AccessTokenClaims]:
    """Sign an access token; returns (token, expires_in, claims)."""
    key = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
    if key is None:
        raise ServerError(detail=f"no active {ctx.settings.access_token_algorithm} signing key")
    lifetime = 60 * (client.token_lifetime or ctx.settings.access_token_lifetime)
    now = int(time.time())
    claims = AccessTokenClaims(
        iss=ctx.issuer,
        sub=subject,
        aud=audience,
        client_id=client.client_id,
        iat=now,
        exp=now + lifetime,
        jti=secrets.token_urlsafe(16),
        scope=scope,
        extra=extra or {},
    )
    token = access_token_signer(key).sign(claims.as_dict())
    return token, lifetime, claims


async def read_access_token(ctx: ServerContext, token: str) -> dict[str, Any] | None:
    """Verify one of our own access tokens; None if it is not one, or invalid or expired."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid = header.get("kid")
    if header.get("typ") != ACCESS_TOKEN_TYP or not isinstance(kid, str):
        return None
    schedule = await ctx.keyring.public_key(kid)
    if schedule is None or header.get("alg") != schedule.alg:
        return None
    try:
        key = jwt.PyJWK(schedule.public_jwk).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[schedule.alg],
            issuer=ctx.issuer,
            options={"verify_aud": False, "require": ["exp", "iat", "jti", "client_id"]},
            leeway=ctx.settings.clock_leeway,
        )
    except jwt.PyJWTError:
        return None
    return claims
