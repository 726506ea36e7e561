"""Pending requests (`authorization_requests`): an authorization request, or a device code being
approved, waiting in one browser session for login, a second factor or consent.

The only address of those rows. A request is found only through the session it is bound to
and only while unexpired; `kind` says which flow it belongs to (a device request has no redirect
URI and carries the device's `user_code`, RFC 8628 §3.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update

from bastion.store._sql import Executor, Row, Sql, inserting, purging, row, rows, values
from bastion.store.models import authorization_requests as requests

AUTHORIZATION = "authorization"
DEVICE = "device"


@dataclass(slots=True, frozen=True)
class AuthorizationRequestRow:
    id: str
    session_hash: str
    client_id: str
    redirect_uri: str  # "" for a device request
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: str
    max_age: int | None
    login_hint: str | None
    created_at: int
    expires_at: int
    acr_values: str | None
    kind: str  # AUTHORIZATION | DEVICE
    user_code: str | None  # the device code's, for DEVICE
    response_mode: str = "query"  # how the code or error travels back: query | form_post


WIDTH = len(requests.columns)


def from_joined(found: Row, now: int) -> AuthorizationRequestRow | None:
    """The request in the leading columns of a joined row, if the join found one unexpired."""
    if found[0] is None:
        return None
    pending = AuthorizationRequestRow(*found[:WIDTH])
    return pending if pending.expires_at > now else None


_GET = Sql(
    select(requests).where(requests.c.id == bindparam("id"), requests.c.session_hash == bindparam("session_hash")),
    "id",
    "session_hash",
)
_INSERT = inserting(requests)
_MOVE = Sql(
    update(requests).where(requests.c.session_hash == bindparam("old")).values(session_hash=bindparam("new")),
    "old",
    "new",
)
_SATISFY_LOGIN = Sql(
    update(requests).where(requests.c.id == bindparam("id")).values(prompt=bindparam("prompt"), max_age=None),
    "id",
    "prompt",
)
_DELETE = Sql(delete(requests).where(requests.c.id == bindparam("id")).returning(requests.c.id), "id")
_TAKE = Sql(
    delete(requests)
    .where(requests.c.id == bindparam("id"), requests.c.session_hash == bindparam("session_hash"))
    .returning(requests.c.id),
    "id",
    "session_hash",
)
_DELETE_FOR_SESSION = Sql(delete(requests).where(requests.c.session_hash == bindparam("session_hash")), "session_hash")
_PURGE = purging(requests, requests.c.expires_at <= bindparam("now"), "now")


async def get(on: Executor, request_id: str, session_hash: str, now: int) -> AuthorizationRequestRow | None:
    """The request if it belongs to this browser session and has not expired."""
    found = await row(on, _GET, request_id, session_hash)
    return None if found is None else from_joined(found, now)


async def insert(on: Executor, pending: AuthorizationRequestRow) -> None:
    await rows(on, _INSERT, *values(pending))


async def move(on: Executor, old_session_hash: str, new_session_hash: str) -> None:
    """Bind every request of a session to its replacement (a rotated session id)."""
    await rows(on, _MOVE, old_session_hash, new_session_hash)


async def satisfy_login(on: Executor, pending: AuthorizationRequestRow) -> None:
    """The user has just authenticated for this request: its prompt=login and max_age are met
    (OpenID Connect Core §3.1.2.1) and must not send them to the login page again."""
    prompt = " ".join(p for p in pending.prompt.split() if p != "login")
    await rows(on, _SATISFY_LOGIN, pending.id, prompt)


async def end(on: Executor, request_id: str) -> bool:
    """Forget a request that has been answered (a code, an error, a device decision); False if
    it was already gone: another answer to it won (a double submit), and this one must not count."""
    return bool(await rows(on, _DELETE, request_id))


async def take(on: Executor, request_id: str, session_hash: str) -> bool:
    """End a request that is being answered with a code or a device decision, if it is still
    bound to this session; False when it is not (already answered, or its session ended or was
    rotated away): the one that took it is the only one to answer it."""
    return bool(await rows(on, _TAKE, request_id, session_hash))


async def end_for_session(on: Executor, session_hash: str) -> None:
    await rows(on, _DELETE_FOR_SESSION, session_hash)


async def purge_expired(on: Executor, now: int, *, batch: int) -> int:
    """Forget at most `batch` requests expired at `now` (never found again); how many."""
    return len(await rows(on, _PURGE, now, batch))
