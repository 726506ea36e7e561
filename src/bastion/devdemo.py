"""The example API (`bastion.demo`) next to the server, in development mode only.

The server does not know the example API: `bastion.asgi` mounts it at /demo. Development mode
seeds the demo's people (alice, bob, carol the admin, dave in another tenant) as real Bastion
users with random passwords kept in the data directory, and `bastion demo token` prints a
genuine access token for one of them, signed by this server's key, with the scopes the person's
role uses (carol's includes `notes:admin`). The demo's guard audits into
the server's own audit lines (`ServerAuditSink`), under the request's one id.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.config import Settings
from bastion.demo import DEMO_USERS, create_app, scopes_for
from bastion.events import audit
from bastion.guard import IssuerConfig
from bastion.guard.audit import AuditLog
from bastion.identity.users import NewUser, create_user, find_user
from bastion.protocol.rfc9068 import AccessTokenClaims, access_token_header
from bastion.server.context import ServerContext

DEMO_SCOPE = ("notes:read", "notes:write")  # a member's scopes (`default_scope` follows the role)
DEMO_CLIENT_ID = "bastion-demo-cli"


def demo_audience(issuer: str) -> str:
    return issuer.rstrip("/") + "/demo"


class DemoMount:
    """An ASGI slot for the demo app, filled once the server has opened its context."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            await PlainTextResponse("Not Found", 404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ServerAuditSink:
    """A guard audit sink writing each entry as one of the server's audit lines (`guard_audit`).

    The server's line carries the request id and source of the request it belongs to, as every
    server audit line does, next to the entry's own `request_id`: one id for both. The chain
    starts afresh in each process (the server's log is a stream, not a store to continue from).
    """

    def last(self) -> dict[str, Any] | None:
        return None

    def write(self, entry: dict[str, Any]) -> None:
        audit("guard_audit", entry=entry)


async def seed_demo_users(settings: Settings, ctx: ServerContext) -> dict[str, str]:
    """Create the demo people once (development mode); return demo name -> sub."""
    subs: dict[str, str] = {}
    passwords: dict[str, str] = {}
    for name, person in DEMO_USERS.items():
        user = await find_user(ctx.database, name)
        if user is None:
            password = secrets.token_urlsafe(18)
            roles = tuple(sorted(person.roles))
            new = NewUser(
                username=name, email=f"{name}@example.com", email_verified=True, display_name=name.title(), roles=roles
            )
            user = await create_user(ctx.database, ctx.people.passwords, new, password)
            passwords[name] = password
        subs[name] = user.sub
    if passwords:
        path = settings.data_dir / "secrets" / "demo-passwords.json"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        # 0600 from its creation, not after a write (the passwords are never readable by others).
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            handle.write(json.dumps({**known, **passwords}, indent=2))
        os.chmod(path, 0o600)
    return subs


async def build_demo(settings: Settings, ctx: ServerContext) -> ASGIApp:
    """The example API for this server's issuer, its people seeded, auditing into the server's log."""
    subs = await seed_demo_users(settings, ctx)
    directory = {subs[name]: person for name, person in DEMO_USERS.items()}
    discovery = settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
    return create_app(
        [IssuerConfig(discovery, audience=demo_audience(settings.issuer))],
        directory=directory,
        seed=True,
        seed_owners=subs,
        audit=AuditLog([ServerAuditSink()]),
    )


def demo_people() -> str:
    """The demo users, for messages: "alice, bob, carol (admin), dave"."""
    return ", ".join(f"{name} (admin)" if "admin" in p.roles else name for name, p in DEMO_USERS.items())


def default_scope(username: str) -> tuple[str, ...]:
    """The scopes of a demo user's role.

    Raises:
        LookupError: `username` is not a demo user (the message lists them).
    """
    person = DEMO_USERS.get(username)
    if person is None:
        raise LookupError(f"{username!r} is not a demo user; use one of {demo_people()}")
    return scopes_for(person)


async def demo_token(ctx: ServerContext, username: str, scope: tuple[str, ...] | None = None) -> str:
    """A genuine access token for a seeded demo user, signed with the server's active key;
    `scope` None: the scopes of the user's role.

    Raises:
        LookupError: not a demo user (the message lists them), not seeded yet, or no signing key.
    """
    import jwt

    role_scope = default_scope(username)
    scope = role_scope if scope is None else scope
    user = await find_user(ctx.database, username)
    if user is None:
        raise LookupError(f"demo user {username} is not seeded yet; start `bastion serve` once in development mode")
    key = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
    if key is None:
        raise LookupError("no active signing key")
    now = int(time.time())
    extra: dict[str, Any] = {"roles": list(user.roles)} if user.roles else {}
    claims = AccessTokenClaims(
        iss=ctx.issuer,
        sub=user.sub,
        aud=demo_audience(ctx.issuer),
        client_id=DEMO_CLIENT_ID,
        iat=now,
        exp=now + 60 * ctx.settings.access_token_lifetime,
        jti=secrets.token_urlsafe(16),
        scope=scope,
        extra=extra,
    )
    return jwt.encode(claims.as_dict(), key.private_key, algorithm=key.alg, headers=access_token_header(key.kid))
