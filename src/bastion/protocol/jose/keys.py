"""Trusted verification keys (RFC 7517): one key object prepared per JWK, its algorithms bound to it.

RFC 8725 §3.1 / ASVS 9.1.2: the algorithm comes from the trusted key, never from the token
header alone. A JWK with an `alg` allows exactly that algorithm; a JWK without one allows only
the asymmetric algorithms its key type can serve. Symmetric (`oct`) keys and keys carrying
private material are never trusted: a verifier uses public keys only, which also closes RS/HS
key confusion (CVE-2016-10555).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.exceptions import InvalidKeyError

from bastion.protocol.jose.algorithms import ASYMMETRIC_ALGORITHMS, EC_CURVE_ALGORITHMS, RSA_ALGORITHMS

__all__ = [
    "KeySet",
    "TrustedKey",
    "cache_lifetime",
    "key_fits",
    "key_from_jwk",
    "keyset_from_jwks",
]

# RFC 7518 §3.3: RSA keys of 2048 bits or larger MUST be used.
_MIN_RSA_BITS = 2048
# cryptography's curve names for the JWK `crv` values of RFC 7518 §6.2.1.1.
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key from a JWKS, prepared once, with the algorithms it may verify."""

    kid: str | None
    algorithms: frozenset[str]
    key: Any

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Verify a JWS signature (RFC 7515 §5.2) with PyJWT's primitive for `alg`, which must be
        one of `algorithms` and fit the key's type (RFC 7518 §3.1: ES256 is for a P-256 key,
        RS256 for an RSA key...). False for any mismatch: a primitive handed a key of another
        type raises (a TypeError from ES256 on an RSA key), which must be a refusal, not a 500."""
        if alg not in self.algorithms or not key_fits(alg, self.key):
            return False
        try:
            return ASYMMETRIC_ALGORITHMS[alg].verify(signing_input, self.key, signature)
        except (TypeError, ValueError, AttributeError, InvalidKeyError):
            return False


def key_fits(alg: str, key: object) -> bool:
    """True when `key` is of the type (and, for ECDSA, the curve) that `alg` signs with."""
    if alg in RSA_ALGORITHMS:
        return isinstance(key, RSAPublicKey)
    if alg == "EdDSA":
        return isinstance(key, Ed25519PublicKey)
    if not isinstance(key, EllipticCurvePublicKey):
        return False
    # RFC 7518 §3.4: each ECDSA algorithm is bound to one curve.
    return EC_CURVE_ALGORITHMS.get(_CURVE_NAMES.get(key.curve.name, "")) == alg


def _allowed_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    # RFC 7517 §4: kty, crv, alg and use are strings. A member of another type (a JWKS from a
    # client or a jwks_uri is anyone's JSON: "alg": ["ES256"] raised TypeError, a 500) makes the
    # key untrusted.
    if any(not isinstance(jwk.get(name, ""), str) for name in ("kty", "crv", "alg", "use", "kid")):
        return frozenset()
    kty = jwk.get("kty")
    if kty == "RSA":
        possible = RSA_ALGORITHMS
    elif kty == "EC":
        curve_alg = EC_CURVE_ALGORITHMS.get(str(jwk.get("crv")))
        possible = frozenset({curve_alg}) if curve_alg else frozenset()
    elif kty == "OKP" and jwk.get("crv") == "Ed25519":
        possible = frozenset({"EdDSA"})
    else:
        return frozenset()  # oct and anything unknown: never a resource-server key
    alg = jwk.get("alg")
    if alg is None:
        return possible
    return frozenset({alg}) & possible


def key_from_jwk(jwk: Mapping[str, Any]) -> TrustedKey | None:
    """Prepare one JWK for verification, or None when it must not be trusted."""
    if "d" in jwk or jwk.get("use", "sig") != "sig":
        return None
    algorithms = _allowed_algorithms(jwk)
    if not algorithms:
        return None
    try:
        key = ASYMMETRIC_ALGORITHMS[next(iter(algorithms))].from_jwk(json.dumps(dict(jwk)))
    except (InvalidKeyError, ValueError, KeyError, TypeError):
        return None
    if jwk.get("kty") == "RSA" and key.key_size < _MIN_RSA_BITS:
        return None
    kid = jwk.get("kid")
    return TrustedKey(kid if isinstance(kid, str) else None, algorithms, key)


@dataclass(slots=True)
class KeySet:
    """The verification keys of one issuer and when they were fetched."""

    keys: tuple[TrustedKey, ...] = ()
    fetched_at: float = float("-inf")
    max_age: float = 0.0
    _by_kid: dict[str, TrustedKey] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_kid = {k.kid: k for k in self.keys if k.kid is not None}

    def find(self, kid: object, alg: str) -> TrustedKey | None:
        """The key for `kid`; without a kid, the only key that can verify `alg`."""
        if isinstance(kid, str):
            return self._by_kid.get(kid)
        if kid is not None:
            return None
        candidates = self.matching(None, alg)
        return candidates[0] if len(candidates) == 1 else None

    def matching(self, kid: object, alg: str) -> tuple[TrustedKey, ...]:
        """Every key that may verify `alg` under `kid` (any kid when it is None): the
        candidates when a signer may hold several keys at once, as a client rotating its own."""
        return tuple(k for k in self.keys if alg in k.algorithms and (kid is None or k.kid == kid))

    def stale(self, now: float) -> bool:
        """True once the JWKS response's cache lifetime has passed."""
        return now >= self.fetched_at + self.max_age


def keyset_from_jwks(
    jwks: Mapping[str, Any], *, fetched_at: float = float("-inf"), max_age: float = 0.0
) -> KeySet:
    """Build a KeySet from a JWKS document (RFC 7517 §5), skipping keys it must not trust.

    `fetched_at` and `max_age` matter for a fetched document only (see `KeySet.stale`).
    """
    raw = jwks.get("keys")
    entries: Iterable[Any] = raw if isinstance(raw, list) else ()
    keys = [key_from_jwk(j) for j in entries if isinstance(j, dict)]
    trusted = tuple(k for k in keys if k is not None)
    kids = [k.kid for k in trusted if k.kid is not None]
    if len(kids) != len(set(kids)):
        # Two keys under one kid make the lookup ambiguous; keep neither of the duplicates.
        dupes = {kid for kid in kids if kids.count(kid) > 1}
        trusted = tuple(k for k in trusted if k.kid not in dupes)
    return KeySet(trusted, fetched_at, max_age)


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def cache_lifetime(cache_control: str | None, *, default: float, minimum: float, maximum: float) -> float:
    """Seconds to keep a JWKS, from its Cache-Control max-age, clamped to [minimum, maximum]."""
    seconds = default
    if cache_control:
        if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
            seconds = minimum
        elif (match := _MAX_AGE.search(cache_control)) is not None:
            seconds = float(match.group(1))
    return min(max(seconds, minimum), maximum)
