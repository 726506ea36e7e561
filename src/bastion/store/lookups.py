"""The reads behind every page of the browser flows, sent straight to the driver (see `_direct`).

A login is seven requests, and each reads its browser session, the pending request, the user or
the consent; these lookups are most of a page's database work. Each is one round trip, in
autocommit (no transaction around a single SELECT).
"""

# ruff: noqa: S608 - the SQL is built once from the models' table and column names; every value is a bound parameter
from __future__ import annotations

from bastion.store._direct import both, build, build_optional, fetch_one, select_list, table_of
from bastion.store.database import Database
from bastion.store.models import AuthorizationRequestRow, BrowserSessionRow, ConsentRow, UserRow

_SESSIONS = table_of(BrowserSessionRow)
_REQUESTS = table_of(AuthorizationRequestRow)
_USERS = table_of(UserRow)
_CONSENTS = table_of(ConsentRow)

_SESSION = both(
    lambda mark: f"SELECT {select_list('s', _SESSIONS)} FROM {_SESSIONS.name} AS s WHERE s.id_hash = {mark(1)}"
)
_SESSION_AND_REQUEST = both(
    lambda mark: (
        f"SELECT {select_list('s', _SESSIONS)}, {select_list('r', _REQUESTS)} FROM {_SESSIONS.name} AS s"
        f" LEFT OUTER JOIN {_REQUESTS.name} AS r ON r.id = {mark(2)} AND r.session_hash = s.id_hash"
        f" WHERE s.id_hash = {mark(1)}"
    )
)
_REQUEST = both(
    lambda mark: (
        f"SELECT {select_list('r', _REQUESTS)} FROM {_REQUESTS.name} AS r"
        f" WHERE r.id = {mark(1)} AND r.session_hash = {mark(2)}"
    )
)
_USER = both(lambda mark: f"SELECT {select_list('u', _USERS)} FROM {_USERS.name} AS u WHERE u.sub = {mark(1)}")
_USER_BY_NAME = both(
    lambda mark: (
        f"SELECT {select_list('u', _USERS)} FROM {_USERS.name} AS u"
        f" WHERE u.username = {mark(1)} OR u.sub = {mark(1)} ORDER BY u.username = {mark(1)} DESC LIMIT 1"
    )
)
_USER_AND_CONSENT = both(
    lambda mark: (
        f"SELECT {select_list('u', _USERS)}, c.scopes FROM {_USERS.name} AS u"
        f" LEFT OUTER JOIN {_CONSENTS.name} AS c ON c.sub = u.sub AND c.client_id = {mark(2)}"
        f" WHERE u.sub = {mark(1)}"
    )
)


async def browser_session(database: Database, id_hash: str) -> BrowserSessionRow | None:
    row = await fetch_one(database, _SESSION, id_hash)
    return None if row is None else build(BrowserSessionRow, row)


async def browser_session_and_request(
    database: Database, id_hash: str, request_id: str, now: int
) -> tuple[BrowserSessionRow | None, AuthorizationRequestRow | None]:
    """The session and, if it belongs to it and is unexpired, its pending request: one round trip."""
    row = await fetch_one(database, _SESSION_AND_REQUEST, id_hash, request_id)
    if row is None:
        return None, None
    width = len(_SESSIONS.columns)
    pending = build_optional(AuthorizationRequestRow, row[width:])
    return build(BrowserSessionRow, row[:width]), pending if pending is not None and pending.expires_at > now else None


async def pending_request(
    database: Database, request_id: str, session_hash: str, now: int
) -> AuthorizationRequestRow | None:
    """The pending request if it belongs to this browser session and has not expired."""
    row = await fetch_one(database, _REQUEST, request_id, session_hash)
    pending = None if row is None else build(AuthorizationRequestRow, row)
    return pending if pending is not None and pending.expires_at > now else None


async def user(database: Database, sub: str) -> UserRow | None:
    row = await fetch_one(database, _USER, sub)
    return None if row is None else build(UserRow, row)


async def user_by_name(database: Database, name: str) -> UserRow | None:
    """By username, or by `sub` (a username wins over another user's equal sub)."""
    row = await fetch_one(database, _USER_BY_NAME, name)
    return None if row is None else build(UserRow, row)


async def user_and_consent(database: Database, sub: str, client_id: str) -> tuple[UserRow | None, frozenset[str]]:
    """The user and the scopes they have granted the client: one round trip."""
    row = await fetch_one(database, _USER_AND_CONSENT, sub, client_id)
    if row is None:
        return None, frozenset()
    return build(UserRow, row[:-1]), frozenset((row[-1] or "").split())
