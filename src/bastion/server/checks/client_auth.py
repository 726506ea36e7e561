"""Client authentication at the token, introspection, revocation and revocation-list endpoints.

RFC 6749 §2.3 (secrets, Basic and post), RFC 7523 §3 (private_key_jwt), and `none` for public
clients. Every failure is `invalid_client` (401) with a description that never says whether the
client exists; the precise reason goes to the audit log only.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from bastion.events import audit
from bastion.protocol.errors import InvalidClient, InvalidToken
from bastion.protocol.jose import TrustedKey, keyset_from_jwks, parse_compact
from bastion.protocol.rfc6749 import ClientCredentials, extract_client_credentials
from bastion.protocol.rfc7523 import check_assertion_claims, check_assertion_header
from bastion.server.clients import Client
from bastion.store import revocations

if TYPE_CHECKING:
    from bastion.ratelimit import Decision
    from bastion.server.context import ServerContext

_GENERIC = "client authentication failed"
_VSCHAR = re.compile(r"[\x20-\x7e]+")

# Endpoints polled by resource servers: a successful authentication there is routine, not an
# event (a failure still is). The revocation feed is polled every few seconds per API process.
QUIET_PATHS = frozenset({"/revocations"})


async def authenticate_client(
    ctx: ServerContext,
    authorization: str | None,
    params: dict[str, list[str]],
    source: str,
    path: str = "/token",
    admitted: list[Decision] | None = None,
) -> Client:
    """Return the authenticated client or raise InvalidClient (or InvalidRequest for a malformed request).
    `admitted` receives the decisions of the route policies keyed on the client, for the answer's
    `RateLimit` fields."""
    credentials = extract_client_credentials(authorization, params)
    used_basic = credentials.method == "client_secret_basic"
    client_id = credentials.client_id or _unverified_assertion_subject(credentials)
    # Per source address only: client ids are public, and a counter keyed on one would let
    # anyone lock the client out (SECURITY.md, "Lockouts"). No store round trip here.
    ctx.limits.check_client_auth(source)
    try:
        client = await _verify(ctx, credentials, client_id)
    except InvalidClient as exc:
        audit(
            "client_authentication_failed",
            client_id=client_id,
            method=credentials.method,
            reason=exc.detail or exc.description,
        )
        await ctx.limits.record_client_auth_failure(source)
        raise InvalidClient(_GENERIC, detail=exc.detail or exc.description, used_basic=used_basic) from exc
    if path not in QUIET_PATHS:
        audit("client_authenticated", client_id=client.client_id, method=credentials.method)
    decisions = await ctx.limits.authenticated(path, client.client_id, source)
    if admitted is not None:
        admitted.extend(decisions)
    return client


async def _verify(ctx: ServerContext, credentials: ClientCredentials, client_id: str | None) -> Client:
    # RFC 6749 Appendix A.1: client-id = *VSCHAR. Anything else names no client, and must not
    # reach the database (PostgreSQL refuses a NUL in a string: that was a 500).
    client = await ctx.clients.get(client_id) if client_id and _VSCHAR.fullmatch(client_id) else None
    if client is None:
        raise InvalidClient(detail="unknown client")
    if not client.enabled:
        raise InvalidClient(detail="client is disabled")
    if credentials.method != client.auth_method:
        raise InvalidClient(detail=f"client is registered for {client.auth_method}, used {credentials.method}")
    if credentials.method in {"client_secret_basic", "client_secret_post"}:
        if credentials.secret is None or not ctx.hasher.matches(credentials.secret, client.secret_hashes):
            raise InvalidClient(detail="wrong client secret")
    elif credentials.method == "private_key_jwt":
        await _verify_assertion(ctx, client, credentials.assertion or "")
    return client


def _unverified_assertion_subject(credentials: ClientCredentials) -> str | None:
    """Which client an assertion claims to be, read before verification (RFC 7523 §3: sub).

    Only used to choose the client whose registered keys then verify the signature; nothing is
    trusted from it: `_verify_assertion` checks the signature with
    that client's keys and iss = sub = client_id afterwards.
    """
    if credentials.assertion is None:
        return None
    try:
        subject = parse_compact(credentials.assertion).claims.get("sub")
    except InvalidToken:
        return None
    return subject if isinstance(subject, str) else None


async def _verify_assertion(ctx: ServerContext, client: Client, assertion: str) -> None:
    try:
        jws = parse_compact(assertion)
    except InvalidToken as exc:
        raise InvalidClient(detail=f"malformed client assertion: {exc.detail}") from exc
    alg = check_assertion_header(jws.header)
    # Without a kid every registered key of the algorithm is a candidate: a client may hold
    # several during its own key rotation (RFC 7523 §3 requires no kid).
    keys = await _client_keys(ctx, client, jws.header.get("kid"), alg)
    if not any(key.verify(alg, jws.signing_input, jws.signature) for key in keys):
        raise InvalidClient(detail="client assertion signature: no registered key verifies it")
    policy = replace(ctx.assertion_policy, accept_token_endpoint_audience=client.token_endpoint_audience)
    now = int(time.time())
    jti, exp = check_assertion_claims(jws.claims, client.client_id, policy, now)
    # RFC 7523 §3 item 7: a jti is accepted once.
    if not await revocations.use_assertion(ctx.database, client.client_id, jti, exp, now):
        raise InvalidClient(detail="client assertion jti replayed")


async def _client_keys(ctx: ServerContext, client: Client, kid: object, alg: str) -> tuple[TrustedKey, ...]:
    """The client's registered keys (RFC 7591 `jwks` or `jwks_uri`) that may verify `alg` under
    `kid`: a key that names its algorithm is used with that one only (RFC 8725 §3.1), and keys
    not for signatures, symmetric or private keys are never used."""
    jwks = await ctx.clients.jwks(client)
    candidates = keyset_from_jwks(jwks).matching(kid, alg)
    if not candidates:
        raise InvalidClient(detail=f"no registered key for kid={kid!r} alg={alg}")
    return candidates
