"""RFC 8725 header checks for any JWS verified with keys Bastion already trusts.

They run on the decoded header before a key is chosen, so a dangerous header costs no key
lookup and no signature check. Every failure is `InvalidToken` with a private detail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose.algorithms import ASYMMETRIC_ALGORITHMS

__all__ = ["HEADER_CHECKS", "HeaderCheck", "check_alg", "check_no_crit", "check_no_embedded_keys"]

HeaderCheck = Callable[[dict[str, Any]], None]


def check_alg(header: dict[str, Any]) -> None:
    """RFC 8725 §3.1: only asymmetric algorithms; `none` and HMAC are refused outright."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
        raise InvalidToken(f"algorithm not accepted: {alg!r}")


def check_no_embedded_keys(header: dict[str, Any]) -> None:
    """RFC 9068 §4 / ASVS 9.1.3: keys come only from the issuer's JWKS, never from the token."""
    for name in ("jku", "x5u", "jwk", "x5c"):
        if name in header:
            raise InvalidToken(f"header parameter {name} refused")


def check_no_crit(header: dict[str, Any]) -> None:
    """RFC 7515 §4.1.11: we understand no extensions, so any `crit` header is refused."""
    if "crit" in header:
        raise InvalidToken("crit header refused")


HEADER_CHECKS: tuple[HeaderCheck, ...] = (check_alg, check_no_embedded_keys, check_no_crit)
