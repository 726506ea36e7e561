"""The sans-I/O JWT access-token validator (RFC 9068 §4) shared by the guard and the server.

Plain data in (a token string, the time), a decision out (an AccessToken or InvalidToken). It
never fetches anything: when it meets an issuer it does not trust, or a `kid` it has no key for,
it raises `UnknownIssuer` / `UnknownKey` so that the caller's I/O wrapper can find the keys (the
guard's `Authenticator` refreshes the JWKS, rate-limited; the authorization server asks its key
ring) and ask again. Caching and revocation are the callers' business: the guard keeps a
verified-token cache and a denylist fed by revocation feeds, the server reads its own store.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose.compact import b64url_decode, decode_header, decode_object, split_compact
from bastion.protocol.jose.keys import KeySet
from bastion.protocol.rfc9068.checks import CLAIM_CHECKS, HEADER_CHECKS
from bastion.protocol.rfc9068.issuer import TrustedIssuer

__all__ = ["AccessToken", "AccessTokenValidator", "UnknownIssuer", "UnknownKey"]

_HEADER_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The claims of a validated JWT access token (RFC 9068 §2.2)."""

    issuer: str
    subject: str
    client_id: str
    audience: tuple[str, ...]
    scopes: frozenset[str]
    roles: frozenset[str]
    expires_at: int
    issued_at: int | None
    jti: str | None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


class UnknownIssuer(InvalidToken):
    """The token names an issuer that is not (or not yet) trusted."""

    def __init__(self, issuer: object) -> None:
        super().__init__(f"issuer not trusted: {issuer!r}")
        self.issuer = issuer


class UnknownKey(InvalidToken):
    """The issuer is trusted but no key of its JWKS matches the token's kid and alg."""

    def __init__(self, issuer: str, kid: object) -> None:
        super().__init__(f"no trusted key for kid {kid!r}")
        self.issuer = issuer
        self.kid = kid


class AccessTokenValidator:
    """Validate JWT access tokens (RFC 9068 §4) from one or more trusted issuers."""

    def __init__(self, issuers: Iterable[TrustedIssuer] = ()) -> None:
        self._issuers: dict[str, TrustedIssuer] = {}
        self._keys: dict[str, KeySet] = {}
        # Headers that passed HEADER_CHECKS, by their exact base64url text: an issuer's tokens
        # share a handful of headers, so each is decoded and checked once (bounded).
        self._headers: dict[str, dict[str, Any]] = {}
        for issuer in issuers:
            self.trust(issuer)

    def trust(self, issuer: TrustedIssuer, keys: KeySet | None = None) -> None:
        """Trust an issuer (and, optionally, set its keys)."""
        self._issuers[issuer.issuer] = issuer
        if keys is not None:
            self._keys[issuer.issuer] = keys

    def set_keys(self, issuer: str, keys: KeySet) -> None:
        """Replace the verification keys of a trusted issuer (after a JWKS fetch)."""
        self._keys[issuer] = keys

    def keys(self, issuer: str) -> KeySet | None:
        """The current keys of an issuer, if any."""
        return self._keys.get(issuer)

    @property
    def issuers(self) -> dict[str, TrustedIssuer]:
        """The trusted issuers by identifier."""
        return dict(self._issuers)

    def header(self, token: str) -> dict[str, Any]:
        """The token's JOSE header once it passed HEADER_CHECKS: what a caller reads to find
        the key (`kid`) before `verify`, so a refused header costs no key lookup.

        Raises:
            InvalidToken: not a compact JWS, or a header HEADER_CHECKS refuses.
        """
        return self._header(split_compact(token)[0])

    def _header(self, segment: str) -> dict[str, Any]:
        header = self._headers.get(segment)
        if header is None:
            header = decode_header(segment)
            for header_check in HEADER_CHECKS:
                header_check(header)
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()
            self._headers[segment] = header
        return header

    def verify(self, token: str, now: float) -> AccessToken:
        """Validate a JWT access token: header, issuer, claims, then the signature.

        Raises:
            InvalidToken: for any reason; `UnknownIssuer`/`UnknownKey` when new metadata
                might help.
        """
        header_b64, payload_b64, signature_b64 = split_compact(token)
        header = self._header(header_b64)
        claims = decode_object(payload_b64)
        iss = claims.get("iss")
        # RFC 9068 §4: iss must exactly match a configured issuer (no normalisation).
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None or not isinstance(iss, str):
            raise UnknownIssuer(iss)
        for claim_check in CLAIM_CHECKS:
            claim_check(header, claims, issuer, now)
        alg: str = header["alg"]
        keyset = self._keys.get(iss)
        key = keyset.find(header.get("kid"), alg) if keyset is not None else None
        if key is None:
            raise UnknownKey(iss, header.get("kid"))
        # The algorithm must be one the trusted key allows, not merely what the header says.
        signing_input = token[: len(header_b64) + 1 + len(payload_b64)].encode("ascii")
        try:
            signature = b64url_decode(signature_b64)
        except binascii.Error as exc:
            raise InvalidToken("undecodable JWS segment") from exc
        if not key.verify(alg, signing_input, signature):
            raise InvalidToken("signature verification failed")
        return _access_token(iss, claims)


def _access_token(iss: str, claims: dict[str, Any]) -> AccessToken:
    """The validated claims, typed (CLAIM_CHECKS have checked every type read here)."""
    aud = claims["aud"]
    scope = claims.get("scope") or ""
    iat = claims.get("iat")
    jti = claims.get("jti")
    return AccessToken(
        issuer=iss,
        subject=claims["sub"],
        client_id=claims.get("client_id") or claims.get("azp") or "",
        audience=(aud,) if isinstance(aud, str) else tuple(aud),
        scopes=frozenset(scope.split()),
        roles=frozenset(claims.get("roles") or ()),
        expires_at=int(claims["exp"]),
        issued_at=int(iat) if iat is not None else None,
        jti=jti if isinstance(jti, str) else None,
        claims=claims,
    )
