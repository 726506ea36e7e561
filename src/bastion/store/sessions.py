"""Browser sessions (`browser_sessions`): the only address of those rows.

Only a hash of the cookie value is stored. A session's pending requests live in
`pending_requests`, bound by that hash: they move with a rotated session and end with it, in
the same transaction. Every page reads the session (with its pending request, in one statement),
so these reads run in autocommit; the authorization endpoint reads it with its user and their
consent to the requesting client (`get_with_account`), also one statement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import and_, bindparam, delete, or_, select, update

from bastion.store import pending_requests, users
from bastion.store._sql import Executor, Sql, inserting, purging, record, records, row, rows, transaction, values
from bastion.store.models import authorization_requests, browser_sessions, consents
from bastion.store.models import users as users_table
from bastion.store.pending_requests import AuthorizationRequestRow
from bastion.store.users import UserRow


@dataclass(slots=True, frozen=True)
class BrowserSessionRow:
    id_hash: str  # SHA-256 of the cookie value
    sid: str  # public id for the ID token's `sid`
    sub: str | None
    stage: str  # anonymous | password | authenticated
    amr: str  # space-separated RFC 8176 values
    auth_time: int | None
    csrf_token: str
    created_at: int
    last_seen_at: int
    expires_at: int  # absolute timeout


WIDTH = len(browser_sessions.columns)

_GET = Sql(select(browser_sessions).where(browser_sessions.c.id_hash == bindparam("id_hash")), "id_hash")
_GET_WITH_REQUEST = Sql(
    select(browser_sessions, authorization_requests)
    .select_from(
        browser_sessions.outerjoin(
            authorization_requests,
            and_(
                authorization_requests.c.id == bindparam("request_id"),
                authorization_requests.c.session_hash == browser_sessions.c.id_hash,
            ),
        )
    )
    .where(browser_sessions.c.id_hash == bindparam("id_hash")),
    "id_hash",
    "request_id",
)
_WITH_ACCOUNT = Sql(
    select(browser_sessions, users_table, consents.c.scopes)
    .select_from(
        browser_sessions.outerjoin(users_table, users_table.c.sub == browser_sessions.c.sub).outerjoin(
            consents,
            and_(consents.c.sub == browser_sessions.c.sub, consents.c.client_id == bindparam("client_id")),
        )
    )
    .where(browser_sessions.c.id_hash == bindparam("id_hash")),
    "id_hash",
    "client_id",
)
_INSERT = inserting(browser_sessions)
_TOUCH = Sql(
    update(browser_sessions)
    .where(browser_sessions.c.id_hash == bindparam("id_hash"))
    .values(last_seen_at=bindparam("now")),
    "id_hash",
    "now",
)
_DELETE = Sql(delete(browser_sessions).where(browser_sessions.c.id_hash == bindparam("id_hash")), "id_hash")
# Dead either way a session dies (identity.sessions.Timeouts.alive): past its absolute expiry,
# or unused for the idle timeout.
_PURGE = purging(
    browser_sessions,
    or_(browser_sessions.c.expires_at <= bindparam("now"), browser_sessions.c.last_seen_at <= bindparam("idle_before")),
    "now",
    "idle_before",
)
_OF_USER = Sql(
    select(browser_sessions)
    .where(browser_sessions.c.sub == bindparam("sub"), browser_sessions.c.expires_at > bindparam("now"))
    .order_by(browser_sessions.c.created_at),
    "sub",
    "now",
)
_BY_SID = Sql(
    select(browser_sessions).where(
        browser_sessions.c.sid == bindparam("sid"), browser_sessions.c.sub == bindparam("sub")
    ),
    "sid",
    "sub",
)
_EXPIRE_FOR_USER = Sql(
    update(browser_sessions).where(browser_sessions.c.sub == bindparam("sub")).values(expires_at=0), "sub"
)


async def get(on: Executor, id_hash: str) -> BrowserSessionRow | None:
    return await record(on, _GET, BrowserSessionRow, id_hash)


async def get_with_request(
    on: Executor, id_hash: str, request_id: str, now: int
) -> tuple[BrowserSessionRow | None, AuthorizationRequestRow | None]:
    """The session and, if it belongs to it and is unexpired, its pending request: one statement."""
    found = await row(on, _GET_WITH_REQUEST, id_hash, request_id)
    if found is None:
        return None, None
    return BrowserSessionRow(*found[:WIDTH]), pending_requests.from_joined(found[WIDTH:], now)


@dataclass(slots=True, frozen=True)
class Account:
    """A session's user and the scopes they have granted one client, read with the session."""

    client_id: str
    user: UserRow | None  # None for an anonymous session, or a user deleted since
    granted: frozenset[str]


async def get_with_account(on: Executor, id_hash: str, client_id: str) -> tuple[BrowserSessionRow | None, Account]:
    """The session, its user and their consent to `client_id`: one statement (the authorization
    endpoint finishes a signed-in user's request with it)."""
    found = await row(on, _WITH_ACCOUNT, id_hash, client_id)
    if found is None:
        return None, Account(client_id, None, frozenset())
    user = users.from_joined(found[WIDTH:])
    granted = frozenset((found[WIDTH + users.WIDTH] or "").split()) if user is not None else frozenset[str]()
    return BrowserSessionRow(*found[:WIDTH]), Account(client_id, user, granted)


async def touch(on: Executor, id_hash: str, now: int) -> None:
    """Record the session's last use (for the idle timeout)."""
    await rows(on, _TOUCH, id_hash, now)


async def expire_for_user(on: Executor, sub: str) -> None:
    """End every session of the user at once (a disabled account)."""
    await rows(on, _EXPIRE_FOR_USER, sub)


async def save(
    on: Executor,
    new: BrowserSessionRow,
    *,
    replaces: str | None = None,
    new_request: AuthorizationRequestRow | None = None,
    satisfied: AuthorizationRequestRow | None = None,
) -> None:
    """Store a new session, in one transaction with: `replaces` (an old session's id hash)
    stopping and its pending requests moving over; `new_request` stored, bound to the new
    session whatever its `session_hash` said; `satisfied`, a request the user has just authenticated for, marked so."""
    async with transaction(on) as tx:
        if replaces is not None:
            await pending_requests.move(tx, replaces, new.id_hash)
            await tx.rows(_DELETE, replaces)
        await tx.rows(_INSERT, *values(new))
        if new_request is not None:
            await pending_requests.insert(tx, replace(new_request, session_hash=new.id_hash))
        if satisfied is not None:
            await pending_requests.satisfy_login(tx, satisfied)


async def end(on: Executor, id_hash: str) -> None:
    """Delete the session and its pending requests, in one transaction."""
    async with transaction(on) as tx:
        await pending_requests.end_for_session(tx, id_hash)
        await tx.rows(_DELETE, id_hash)


async def purge_expired(on: Executor, now: int, *, idle_before: int, batch: int) -> int:
    """Delete at most `batch` sessions that are dead at `now`: past their absolute expiry, or
    last used at or before `idle_before`. Their pending requests expire on their own (and are
    never found without a live session of the same hash that carries them). Returns how many."""
    return len(await rows(on, _PURGE, now, idle_before, batch))


async def list_for_user(on: Executor, sub: str, now: int) -> list[BrowserSessionRow]:
    """The user's sessions not past their absolute expiry at `now`, oldest first."""
    return await records(on, _OF_USER, BrowserSessionRow, sub, now)


async def get_by_sid(on: Executor, sub: str, sid: str) -> BrowserSessionRow | None:
    """The user's session by its public `sid` (the one an administrator sees)."""
    return await record(on, _BY_SID, BrowserSessionRow, sid, sub)
