"""Administrative operations on people: users, their roles, browser sessions and grants
(refresh-token families). The one layer the CLI (`bastion users`, `bastion sessions`) and the
admin HTTP API share; every change is audited with who made it (`admin.Actor`)."""

from __future__ import annotations

import time
from typing import Any

from bastion.identity import NewUser, PasswordHasher, UserError, users
from bastion.identity.users import User
from bastion.server.admin import CLI, Actor, Conflict, UnknownObject
from bastion.server.denylist import AccessTokenDenylist
from bastion.store import Database, refresh_tokens, transaction
from bastion.store import sessions as browser_sessions
from bastion.store import users as stored
from bastion.store.refresh_tokens import RefreshTokenRow
from bastion.store.sessions import BrowserSessionRow

# The roles Bastion itself gives meaning to; any other role is the applications' own.
KNOWN_ROLES = {
    "admin": "Administers Bastion (with the bastion:admin scope and a second factor); must use MFA.",
}


async def require(database: Database, name: str) -> User:
    """A user by username or sub, or UnknownObject."""
    user = await users.find_user(database, name)
    if user is None:
        raise UnknownObject(f"no user {name}")
    return user


async def create_user(
    database: Database, hasher: PasswordHasher, new: NewUser, password: str, *, actor: Actor = CLI
) -> dict[str, Any]:
    """A new user; a taken username is a Conflict."""
    if await users.find_user(database, new.username) is not None:
        raise Conflict(f"username {new.username} is taken")
    try:
        user = await users.create_user(database, hasher, new, password)
    except UserError as exc:
        if "is taken" in str(exc):  # lost a race with another creation of the same name
            raise Conflict(str(exc)) from None
        raise
    actor.audit("user_created", sub=user.sub)
    return users.describe(user)


async def set_roles(database: Database, name: str, roles: tuple[str, ...], *, actor: Actor = CLI) -> dict[str, Any]:
    """Replace a user's roles; tokens issued before carry the old ones until they expire."""
    user = await require(database, name)
    users.check_roles(roles)
    await stored.set_roles(database, user.sub, " ".join(dict.fromkeys(roles)), int(time.time()))
    actor.audit("user_roles_changed", sub=user.sub, roles=list(roles))
    return users.describe(await require(database, user.sub))


async def set_enabled(database: Database, name: str, enabled: bool, *, actor: Actor = CLI) -> dict[str, Any]:
    """Enable or disable; disabling ends the user's sessions and refresh tokens."""
    user = await users.set_enabled(database, (await require(database, name)).sub, enabled)
    actor.audit("user_enabled" if enabled else "user_disabled", sub=user.sub)
    return users.describe(user)


async def list_roles(database: Database) -> list[dict[str, Any]]:
    """Every role some user holds, and Bastion's own, with how many users hold each."""
    held: dict[str, int] = dict.fromkeys(KNOWN_ROLES, 0)
    for user in await users.list_users(database):
        for role in user.roles:
            held[role] = held.get(role, 0) + 1
    return [{"role": role, "users": count, "description": KNOWN_ROLES.get(role, "")} for role, count in held.items()]


async def delete_user(
    database: Database, denylist: AccessTokenDenylist, name: str, *, actor: Actor = CLI
) -> dict[str, Any]:
    """Forget a user: their grants are revoked (with the access tokens issued alongside), their
    sessions, consents and recovery codes deleted with the row."""
    user = await require(database, name)
    for grant in await refresh_tokens.live_for_user(database, user.sub, int(time.time())):
        await _revoke_family(database, denylist, grant.family)
    async with transaction(database) as tx:
        await refresh_tokens.revoke_for_user(tx, user.sub, int(time.time()))
        if not await stored.delete_row(tx, user.sub):
            raise UnknownObject(f"no user {name}")
    actor.audit("user_deleted", sub=user.sub)
    return {"sub": user.sub, "deleted": True}


def describe_session(row: BrowserSessionRow) -> dict[str, Any]:
    """A session as an administrator sees it: its public `sid`, never the cookie's hash."""
    return {
        "sid": row.sid,
        "sub": row.sub,
        "stage": row.stage,
        "amr": row.amr.split(),
        "auth_time": row.auth_time,
        "created_at": row.created_at,
        "last_seen_at": row.last_seen_at,
        "expires_at": row.expires_at,
    }


async def list_sessions(database: Database, name: str) -> list[dict[str, Any]]:
    user = await require(database, name)
    return [describe_session(s) for s in await browser_sessions.list_for_user(database, user.sub, int(time.time()))]


async def revoke_session(database: Database, name: str, sid: str, *, actor: Actor = CLI) -> dict[str, Any]:
    """End one of the user's browser sessions: the next page it opens asks to sign in again."""
    user = await require(database, name)
    session = await browser_sessions.get_by_sid(database, user.sub, sid)
    if session is None:
        raise UnknownObject(f"no session {sid} of user {name}")
    await browser_sessions.end(database, session.id_hash)
    actor.audit("session_revoked", sub=user.sub, sid=sid)
    return {"sid": sid, "revoked": True}


def describe_grant(row: RefreshTokenRow) -> dict[str, Any]:
    """A grant (refresh-token family) by its family id; never a token or its hash."""
    return {
        "family": row.family,
        "client_id": row.client_id,
        "sub": row.sub,
        "scope": row.scope,
        "sid": row.sid,
        "auth_time": row.auth_time,
        "acr": row.acr,
        "last_refreshed_at": row.created_at,
        "expires_at": row.family_expires_at,
    }


async def list_grants(database: Database, name: str) -> list[dict[str, Any]]:
    user = await require(database, name)
    return [describe_grant(g) for g in await refresh_tokens.live_for_user(database, user.sub, int(time.time()))]


async def _revoke_family(database: Database, denylist: AccessTokenDenylist, family: str) -> None:
    for jti, client_id, exp in await refresh_tokens.revoke_family(database, family, int(time.time())):
        await denylist.revoke(jti, client_id, exp)


async def revoke_grant(
    database: Database, denylist: AccessTokenDenylist, name: str, family: str, *, actor: Actor = CLI
) -> dict[str, Any]:
    """Revoke one of the user's grants: its refresh tokens and the access tokens issued with them."""
    user = await require(database, name)
    live = {g.family for g in await refresh_tokens.live_for_user(database, user.sub, int(time.time()))}
    if family not in live:
        raise UnknownObject(f"no live grant {family} of user {name}")
    await _revoke_family(database, denylist, family)
    actor.audit("grant_revoked", sub=user.sub, family=family)
    return {"family": family, "revoked": True}
