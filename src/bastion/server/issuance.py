"""Tokens for a user: the access token (RFC 9068), the ID token (OpenID Connect Core §2) and the
refresh token (RFC 6749 §6), shared by the authorization_code, refresh_token and device_code
grants: each turns what it holds into a `UserGrant`, and `plan_tokens` then `sign_user_tokens` do the rest."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bastion.events import audit
from bastion.identity.users import User
from bastion.keys import SigningKey
from bastion.protocol.errors import InvalidGrant, ServerError
from bastion.protocol.oidc import ACR_MFA, ACR_PASSWORD, at_hash, id_token_claims, id_token_header, scope_claims
from bastion.protocol.rfc6749.authorization import OFFLINE_ACCESS, OPENID
from bastion.protocol.rfc8707 import select_audience
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.tokens import access_lifetime, jws_signer, new_jti, sign_access_token
from bastion.store.refresh_tokens import RefreshTokenRow, Successor

# A scope that asks for the user's roles in the access token (RFC 9068 §2.2.3.1), granted only
# to clients registered with it.
ROLES_SCOPE = "roles"


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def acr_for(amr: tuple[str, ...]) -> str:
    return ACR_MFA if "mfa" in amr else ACR_PASSWORD


@dataclass(frozen=True)
class Authentication:
    """What happened at login, carried from the code to every refresh."""

    sid: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str

    @classmethod
    def stored(cls, sid: str, auth_time: int, amr: str | None, acr: str | None) -> Authentication:
        """As a code, refresh token or device code row keeps it (amr space-separated)."""
        return cls(sid, auth_time, tuple((amr or "").split()), acr or "")


@dataclass(frozen=True)
class UserGrant:
    """What a code, a refresh token or an approved device code grants: a user, how they signed
    in, the scope, and (codes only) the nonce the ID token echoes."""

    user: User
    authn: Authentication
    scope: tuple[str, ...]
    nonce: str | None = None


class IssuedToClient(Protocol):
    """A code, a refresh token or a device code: what a grant presents."""

    @property
    def client_id(self) -> str: ...


Presented = TypeVar("Presented", bound=IssuedToClient)


def issued_to(row: Presented | None, client: Client, invalid: str, what: str) -> Presented:
    """The presented code or token exists and was issued to this client (RFC 6749 §4.1.3, §6;
    RFC 8628 §3.4); otherwise `invalid_grant` with the grant's one public description."""
    if row is None:
        raise InvalidGrant(invalid, detail=f"unknown {what}")
    if row.client_id != client.client_id:
        raise InvalidGrant(invalid, detail=f"{what} issued to another client")
    return row


def user_claims(user: User) -> dict[str, Any]:
    claims: dict[str, Any] = dict(user.profile)
    claims.setdefault("name", user.display_name)
    claims.setdefault("preferred_username", user.username)
    claims["email"] = user.email
    claims["email_verified"] = user.email_verified
    claims["updated_at"] = user.updated_at
    return claims


def wants_refresh_token(client: Client, scope: tuple[str, ...]) -> bool:
    """RFC 6749 §6 for clients allowed the grant; for OpenID requests only with offline_access
    (OpenID Connect Core §11)."""
    if "refresh_token" not in client.grant_types:
        return False
    return OFFLINE_ACCESS in scope if OPENID in scope else True


@dataclass(frozen=True)
class SigningKeys:
    """The keys a user's tokens for one client are signed with, chosen before anything is spent."""

    access_token: SigningKey
    id_token: SigningKey | None  # None: no active key of the client's ID-token algorithm


async def load_signing_keys(ctx: ServerContext, client: Client) -> SigningKeys:
    """The keys a user's tokens for `client` are signed with, now (the key schedule reloaded if
    its cache is due). A grant loads them into its `Plan` before it spends a code or a refresh
    token: signing after the spend then touches neither the database nor the cache, so a reload
    failing (the database away) fails before the spend, never after it, which would leave the
    client without the tokens of what it spent."""
    access = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
    if access is None:
        raise ServerError(detail=f"no active {ctx.settings.access_token_algorithm} signing key")
    return SigningKeys(access, await ctx.keyring.signing_key(client.id_token_signed_response_alg))


def sign_id_token(
    ctx: ServerContext, client: Client, grant: UserGrant, key: SigningKey | None, *, access_token: str, lifetime: int
) -> str:
    """The ID token, signed with `key` (OpenID Connect Registration 1.0 §2: the client's
    id_token_signed_response_alg, RS256 by default, chosen by `load_signing_keys`)."""
    if key is None:
        raise ServerError(detail=f"no active {client.id_token_signed_response_alg} signing key for ID tokens")
    user, authn = grant.user, grant.authn
    claims = id_token_claims(
        issuer=ctx.issuer,
        subject=user.sub,
        audience=client.client_id,
        issued_at=int(time.time()),
        lifetime=lifetime,
        auth_time=authn.auth_time,
        nonce=grant.nonce,
        access_token_hash=at_hash(access_token, key.alg),
        amr=authn.amr,
        acr=authn.acr,
        sid=authn.sid,
        user_claims=scope_claims(user_claims(user), grant.scope),
    )
    return jws_signer(key, "id_token", id_token_header).sign(claims)


@dataclass(frozen=True)
class Plan:
    """What a grant decides before it spends or signs anything: the audience (RFC 8707), the
    time, the access token's jti, the refresh token's value and the signing keys. A refresh
    records the jti and the new token with the rotation, and signs only once the rotation has
    won, with these keys."""

    audience: str
    now: int
    access_jti: str
    refresh_token: str
    keys: SigningKeys

    def successor(self, ctx: ServerContext, client: Client) -> Successor:
        """The rotated token's successor, as the store records it with the rotation."""
        return Successor(
            token_hash=token_hash(self.refresh_token),
            expires_at=self.now + ctx.settings.refresh_token_idle_lifetime,
            access_jti=self.access_jti,
            access_exp=self.now + access_lifetime(ctx, client),
        )


async def plan_tokens(ctx: ServerContext, client: Client, params: dict[str, list[str]]) -> Plan:
    """The plan of a user's tokens for the audience the request names (`resource` in `params`;
    an unknown one is refused here, before anything is spent), with the keys to sign them."""
    audience = select_audience(params.get("resource", []), client.audiences, ctx.settings.audience)
    keys = await load_signing_keys(ctx, client)
    return Plan(audience, int(time.time()), new_jti(), secrets.token_urlsafe(32), keys)  # 256 bits


@dataclass(frozen=True)
class Issued:
    response: dict[str, Any]
    access_jti: str
    access_exp: int
    audience: str
    refresh_row: RefreshTokenRow | None


def sign_user_tokens(
    ctx: ServerContext,
    client: Client,
    grant: UserGrant,
    plan: Plan,
    *,
    refresh_scope: tuple[str, ...] | None,
    family: str | None = None,
    family_expires_at: int | None = None,
) -> Issued:
    """Sign the tokens as `plan` says (`plan_tokens`: audience, time, jti, keys), with no I/O.
    A refresh token row is returned (not stored) when one is issued: `refresh_scope` None means
    no refresh token; `family` continues a rotated one."""
    user, authn, scope = grant.user, grant.authn, grant.scope
    audience, now = plan.audience, plan.now
    extra: dict[str, Any] = {"auth_time": authn.auth_time, "acr": authn.acr, "amr": list(authn.amr)}
    if ROLES_SCOPE in scope and user.roles:
        extra["roles"] = list(user.roles)
    token, expires_in, claims = sign_access_token(
        ctx, client, plan.keys.access_token,
        subject=user.sub, audience=audience, scope=scope, extra=extra, jti=plan.access_jti, issued_at=now,
    )
    response: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    if scope:
        response["scope"] = " ".join(scope)
    if OPENID in scope:
        response["id_token"] = sign_id_token(
            ctx, client, grant, plan.keys.id_token, access_token=token, lifetime=expires_in
        )
    row = None
    if refresh_scope is not None:
        refresh_token = plan.refresh_token
        absolute = family_expires_at or now + ctx.settings.refresh_token_absolute_lifetime
        row = RefreshTokenRow(
            token_hash=token_hash(refresh_token),
            family=family or secrets.token_urlsafe(16),
            client_id=client.client_id,
            sub=user.sub,
            scope=" ".join(refresh_scope),
            sid=authn.sid,
            auth_time=authn.auth_time,
            amr=" ".join(authn.amr),
            acr=authn.acr,
            created_at=now,
            expires_at=min(now + ctx.settings.refresh_token_idle_lifetime, absolute),
            family_expires_at=absolute,
            rotated_at=None,
            revoked_at=None,
            access_jti=claims.jti,
            access_exp=claims.exp,
        )
        response["refresh_token"] = refresh_token
    return Issued(response, claims.jti, claims.exp, audience, row)


def audit_user_tokens_issued(client: Client, grant_type: str, grant: UserGrant, issued: Issued) -> None:
    """The `token_issued` security event of the grants that issue a user's tokens."""
    audit(
        "token_issued",
        client_id=client.client_id,
        grant_type=grant_type,
        sub=grant.user.sub,
        jti=issued.access_jti,
        aud=issued.audience,
        scope=" ".join(grant.scope),
        refresh_family=issued.refresh_row.family if issued.refresh_row is not None else None,
    )


async def revoke_issued(ctx: ServerContext, issued: list[tuple[str, str, int]]) -> None:
    """Revoke access tokens by jti (after a code replay or refresh-token reuse)."""
    for jti, client_id, exp in issued:
        await ctx.denylist.revoke(jti, client_id, exp)
