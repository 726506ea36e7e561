"""The sans-I/O bearer-token validator shared by the middleware and the FastAPI dependencies.

Plain data in (a token string, the time), a decision out (an AccessToken or InvalidToken). It
never fetches anything: when it meets an issuer it has no keys for, or a `kid` it does not know,
it raises `UnknownIssuer` / `UnknownKey` so that the I/O wrapper (`Authenticator`) can refresh
the metadata (rate-limited) and ask again.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Callable, Iterable
from typing import Any

from bastion.guard._cache import VerifiedTokenCache
from bastion.guard._checks import CLAIM_CHECKS, HEADER_CHECKS
from bastion.guard._denylist import Denylist
from bastion.guard._errors import InvalidToken
from bastion.guard._issuer import TrustedIssuer
from bastion.guard._jose import b64url_decode, decode_header, decode_object, split_compact
from bastion.guard._keys import KeySet
from bastion.guard._principal import AccessToken

__all__ = ["BearerTokenValidator", "UnknownIssuer", "UnknownKey"]

_HEADER_CACHE_SIZE = 256


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


class BearerTokenValidator:
    """Validate JWT access tokens (RFC 9068 §4) from one or more trusted issuers."""

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer] = (),
        *,
        cache_size: int = 10_000,
        denylist: Denylist | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers: dict[str, TrustedIssuer] = {}
        self._keys: dict[str, KeySet] = {}
        # Headers that passed HEADER_CHECKS, by their exact base64url text: an issuer's tokens
        # share a handful of headers, so each is decoded and checked once (bounded).
        self._headers: dict[str, dict[str, Any]] = {}
        self.cache = VerifiedTokenCache(cache_size)
        self.denylist = denylist if denylist is not None else Denylist()
        self.denylist.on_revoke(self.cache.discard_jti)
        self.clock = clock
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

    def validate(self, token: str, now: float | None = None) -> AccessToken:
        """Validate a JWT access token.

        Raises:
            InvalidToken: for any reason; `UnknownIssuer`/`UnknownKey` when new metadata
                might help.
        """
        if now is None:
            now = self.clock()
        cached = self.cache.get(token, now)
        if cached is not None:
            if cached.jti is not None and cached.jti in self.denylist:
                raise InvalidToken("revoked")
            return cached
        access_token = self._verify(token, now)
        self.cache.put(token, access_token)
        return access_token

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

    def _verify(self, token: str, now: float) -> AccessToken:
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
        jti = claims.get("jti")
        if jti is not None and jti in self.denylist:
            raise InvalidToken("revoked")
        aud = claims["aud"]
        scope = claims.get("scope") or ""
        iat = claims.get("iat")
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
