"""The browser session behind the pages: read from the `__Host-` cookie, created, rotated, ended;
and the device cookie a completed sign-in leaves (`identity.devices`).

Only a hash of the cookie value is stored. A session is rotated (new id, old id dead) whenever
its privilege changes: after the password and after the second factor.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import devices, sessions
from bastion.server.context import ServerContext
from bastion.store import sessions as browser_sessions
from bastion.store.pending_requests import AuthorizationRequestRow
from bastion.store.sessions import BrowserSessionRow


@dataclass(frozen=True)
class BrowserSession:
    id_hash: str
    sid: str
    sub: str | None
    stage: str
    amr: tuple[str, ...]
    auth_time: int | None
    csrf_token: str

    @property
    def authenticated(self) -> bool:
        return self.stage == sessions.AUTHENTICATED and self.sub is not None

    @classmethod
    def from_row(cls, row: BrowserSessionRow) -> BrowserSession:
        return cls(row.id_hash, row.sid, row.sub, row.stage, tuple(row.amr.split()), row.auth_time, row.csrf_token)


async def load_session(ctx: ServerContext, request: Request) -> BrowserSession | None:
    """The live session named by the cookie, or None (absent, unknown, idle or expired)."""
    id_hash = _cookie_hash(request)
    if id_hash is None:
        return None
    return await _alive(ctx, await browser_sessions.get(ctx.database, id_hash), int(time.time()))


async def load_session_and_request(
    ctx: ServerContext, request: Request, request_id: str | None
) -> tuple[BrowserSession | None, AuthorizationRequestRow | None]:
    """The live session and its unexpired pending request `request_id` (each None if absent)."""
    id_hash = _cookie_hash(request)
    if id_hash is None:
        return None, None
    if not request_id:
        return await load_session(ctx, request), None
    now = int(time.time())
    row, pending = await browser_sessions.get_with_request(ctx.database, id_hash, request_id, now)
    browser = await _alive(ctx, row, now)
    return browser, pending if browser is not None else None


def _cookie_hash(request: Request) -> str | None:
    session_id = request.cookies.get(sessions.COOKIE_NAME)
    return sessions.hash_session_id(session_id) if session_id else None


async def _alive(ctx: ServerContext, row: BrowserSessionRow | None, now: int) -> BrowserSession | None:
    """The session if it is alive: an idle or expired one is ended; use is recorded now and then."""
    if row is None:
        return None
    timeouts = ctx.people.timeouts
    if not timeouts.alive(last_seen_at=row.last_seen_at, expires_at=row.expires_at, now=now):
        await browser_sessions.end(ctx.database, row.id_hash)
        return None
    if now - row.last_seen_at >= timeouts.touch_every:
        await browser_sessions.touch(ctx.database, row.id_hash, now)
    return BrowserSession.from_row(row)


async def start_session(
    ctx: ServerContext,
    response: Response,
    old: BrowserSession | None,
    *,
    sub: str | None = None,
    stage: str = sessions.ANONYMOUS,
    amr: tuple[str, ...] = (),
    auth_time: int | None = None,
    satisfied: AuthorizationRequestRow | None = None,
    new_request: AuthorizationRequestRow | None = None,
) -> BrowserSession:
    """A new session id (replacing `old`, whose pending requests move over), set on `response`.
    `satisfied` is the request the user has just authenticated for (its prompt=login and max_age
    are then met); `new_request` a pending request stored with the new session, in one transaction."""
    session_id = sessions.new_session_id()
    now = int(time.time())
    absolute = ctx.people.timeouts.absolute
    row = BrowserSessionRow(
        id_hash=sessions.hash_session_id(session_id),
        # The `sid` claim stays the same across rotations of one login (OIDC Front-Channel Logout §3).
        sid=old.sid if old is not None and old.sub == sub and sub is not None else secrets.token_urlsafe(16),
        sub=sub,
        stage=stage,
        amr=" ".join(amr),
        auth_time=auth_time,
        csrf_token=sessions.new_csrf_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + absolute,
    )
    await browser_sessions.save(
        ctx.database,
        row,
        replaces=old.id_hash if old else None,
        new_request=new_request,
        satisfied=satisfied if stage == sessions.AUTHENTICATED else None,
    )
    response.headers.append("set-cookie", sessions.cookie_header(session_id, absolute))
    return BrowserSession.from_row(row)


async def authenticate(
    ctx: ServerContext,
    response: Response,
    old: BrowserSession,
    *,
    sub: str,
    username: str,
    amr: tuple[str, ...],
    satisfied: AuthorizationRequestRow,
) -> BrowserSession:
    """The session of a sign-in just completed for `satisfied` (password alone, or with the
    second factor): rotated, authenticated now, `amr` as shown (RFC 8176). The browser gets a
    new device cookie for `username`: from now on it is judged by its own failed sign-ins."""
    remember_device(ctx, response, username)
    return await start_session(
        ctx,
        response,
        old,
        sub=sub,
        stage=sessions.AUTHENTICATED,
        amr=amr,
        auth_time=int(time.time()),
        satisfied=satisfied,
    )


def trusted_device(ctx: ServerContext, request: Request, account: str) -> str | None:
    """The device this browser is for `account` (named by its valid device cookie), or None."""
    cookie = request.cookies.get(devices.COOKIE_NAME)
    return ctx.people.devices.device(cookie, account, int(time.time())) if cookie else None


def remember_device(ctx: ServerContext, response: Response, account: str) -> None:
    """Set a new device cookie for `account` (only once a sign-in is complete: a cookie after
    the password alone would let whoever knows it judge the second factor by a fresh device)."""
    people = ctx.people
    value = people.devices.issue(account, int(time.time()), people.device_lifetime)
    response.headers.append("set-cookie", devices.cookie_header(value, people.device_lifetime))


async def end_session(ctx: ServerContext, response: Response, current: BrowserSession | None) -> None:
    if current is not None:
        await browser_sessions.end(ctx.database, current.id_hash)
    response.headers.append("set-cookie", sessions.clearing_cookie_header())
