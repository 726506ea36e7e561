"""The browser session behind the pages: read from the `__Host-` cookie, created, rotated, ended;
and the device cookie a completed sign-in leaves (`identity.devices`).

Only a hash of the cookie value is stored. A session is rotated (new id, old id dead) whenever
its privilege changes: after the password and after the second factor.

A browser that has not signed in has a provisional session: its cookie alone, with nothing
stored (`anonymous_session`). Its CSRF token and `sid` are derived from the cookie's hash under
the server's pepper, and the pending requests it starts are bound to that hash; the first
sign-in rotates it into a stored session that takes them over. So a stranger's requests store
no session row, and `GET /device` stores nothing at all.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import devices, sessions
from bastion.server.context import ServerContext
from bastion.store import pending_requests
from bastion.store import sessions as browser_sessions
from bastion.store.pending_requests import AuthorizationRequestRow
from bastion.store.sessions import Account, BrowserSessionRow


@dataclass(frozen=True)
class BrowserSession:
    id_hash: str
    sid: str
    sub: str | None
    stage: str
    amr: tuple[str, ...]
    auth_time: int | None
    csrf_token: str
    stored: bool = True  # False for a provisional session (its cookie alone, `anonymous_session`)
    # Its user and their consent to one client, when read with the session (`load_session_with_account`).
    account: Account | None = field(default=None, compare=False, repr=False)

    @property
    def authenticated(self) -> bool:
        return self.stage == sessions.AUTHENTICATED and self.sub is not None

    @classmethod
    def from_row(cls, row: BrowserSessionRow, account: Account | None = None) -> BrowserSession:
        amr = tuple(row.amr.split())
        return cls(row.id_hash, row.sid, row.sub, row.stage, amr, row.auth_time, row.csrf_token, account=account)


async def load_session(ctx: ServerContext, request: Request) -> BrowserSession | None:
    """The live session named by the cookie, or None (absent, unknown, idle or expired)."""
    id_hash = _cookie_hash(request)
    if id_hash is None:
        return None
    return await _alive(ctx, await browser_sessions.get(ctx.database, id_hash), int(time.time()))


async def load_session_with_account(ctx: ServerContext, request: Request, client_id: str) -> BrowserSession | None:
    """`load_session`, with the session's user and their consent to `client_id` read in the same
    statement (kept as its `account`, for `flow.check_finish`)."""
    id_hash = _cookie_hash(request)
    if id_hash is None:
        return None
    row, account = await browser_sessions.get_with_account(ctx.database, id_hash, client_id)
    return await _alive(ctx, row, int(time.time()), account)


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
    if row is None:
        # No stored session: a provisional one, if the request is bound to its cookie.
        pending = await pending_requests.get(ctx.database, request_id, id_hash, now)
        return (provisional_session(ctx, id_hash), pending) if pending is not None else (None, None)
    browser = await _alive(ctx, row, now)
    return browser, pending if browser is not None else None


def provisional_session(ctx: ServerContext, id_hash: str) -> BrowserSession:
    """The anonymous session that is only the cookie hashing to `id_hash`: nothing stored. Its
    CSRF token is an HMAC of that hash under the pepper, so only the cookie's holder has it."""
    return BrowserSession(
        id_hash=id_hash,
        sid=ctx.hasher.hash("sid:" + id_hash)[:22],
        sub=None,
        stage=sessions.ANONYMOUS,
        amr=(),
        auth_time=None,
        csrf_token=ctx.hasher.hash("csrf:" + id_hash),
        stored=False,
    )


def provisional_from_cookie(ctx: ServerContext, request: Request) -> BrowserSession | None:
    """The provisional session the request's cookie names (for a request with no stored session)."""
    id_hash = _cookie_hash(request)
    return provisional_session(ctx, id_hash) if id_hash is not None else None


def anonymous_session(ctx: ServerContext, request: Request, response: Response) -> BrowserSession:
    """For a request with no stored session: the provisional session its cookie names, else a
    new one whose cookie is set on `response`. Nothing is stored."""
    found = provisional_from_cookie(ctx, request)
    if found is not None:
        return found
    session_id = sessions.new_session_id()
    response.headers.append("set-cookie", sessions.cookie_header(session_id, ctx.people.timeouts.absolute))
    return provisional_session(ctx, sessions.hash_session_id(session_id))


def _cookie_hash(request: Request) -> str | None:
    session_id = request.cookies.get(sessions.COOKIE_NAME)
    return sessions.hash_session_id(session_id) if session_id else None


async def _alive(
    ctx: ServerContext, row: BrowserSessionRow | None, now: int, account: Account | None = None
) -> BrowserSession | None:
    """The session if it is alive: an idle or expired one is ended; use is recorded now and then."""
    if row is None:
        return None
    timeouts = ctx.people.timeouts
    if not timeouts.alive(last_seen_at=row.last_seen_at, expires_at=row.expires_at, now=now):
        await browser_sessions.end(ctx.database, row.id_hash)
        return None
    if now - row.last_seen_at >= timeouts.touch_every:
        await browser_sessions.touch(ctx.database, row.id_hash, now)
    return BrowserSession.from_row(row, account)


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
) -> BrowserSession:
    """A new session id (replacing `old`, stored or provisional, whose pending requests move
    over), set on `response`. `satisfied` is the request the user has just authenticated for
    (its prompt=login and max_age are then met)."""
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
