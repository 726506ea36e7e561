"""Building client assertions (RFC 7523) the way real clients do, including malicious ones.

Well-formed assertions are signed with PyJWT; the attacks PyJWT refuses to produce (`alg: none`,
HMAC keyed with a public key) are assembled by hand from base64url parts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from bastion.protocol.rfc6749.client_auth import JWT_BEARER_ASSERTION

CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}


@dataclass(frozen=True)
class ClientKey:
    """A client's key pair: the private half signs, the public JWK is registered."""

    alg: str
    private_key: Any
    public_jwk: dict[str, Any]

    @property
    def kid(self) -> str:
        return str(self.public_jwk["kid"])

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def public_pem(self) -> bytes:
        return bytes(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def new_client_key(alg: str = "ES256", kid: str | None = None) -> ClientKey:
    if alg in CURVES:
        private: Any = ec.generate_private_key(CURVES[alg])
        jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid or secrets.token_urlsafe(8), "alg": alg, "use": "sig"})
    return ClientKey(alg, private, jwk)


def assertion_claims(client_id: str, audience: Any, **changes: Any) -> dict[str, Any]:
    """Valid RFC 7523 §3 claims; a change of None removes the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], key: ClientKey, **headers: Any) -> str:
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, **headers})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """An `alg: none` JWS (RFC 7519 §6): what an attacker sends to skip verification."""
    return f"{_segment({'alg': 'none', 'kid': kid})}.{_segment(claims)}."


def hmac_with_public_key(claims: dict[str, Any], key: ClientKey) -> str:
    """HS256 keyed with the client's public key: the classic algorithm-confusion attack."""
    signing_input = f"{_segment({'alg': 'HS256', 'kid': key.kid, 'typ': 'JWT'})}.{_segment(claims)}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def assertion_form(assertion: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER_ASSERTION, "client_assertion": assertion, **extra}
