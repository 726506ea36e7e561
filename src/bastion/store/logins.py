"""The writes of a login, straight to the driver (see `_direct`): a new or rotated browser session
with its pending requests, and an authorization code with the consent that bought it. Each is
one transaction, as it was through the ORM, without the ORM's cost per statement.
"""

# ruff: noqa: S608 - the SQL is built once from the models' table and column names; every value is a bound parameter
from __future__ import annotations

from bastion.store._direct import Sql, both, insert_sql, row_values, table_of, transaction
from bastion.store.database import Database
from bastion.store.models import AuthorizationCodeRow, AuthorizationRequestRow, BrowserSessionRow, ConsentRow

_SESSIONS = table_of(BrowserSessionRow).name
_REQUESTS = table_of(AuthorizationRequestRow).name
_CODES = table_of(AuthorizationCodeRow).name
_CONSENTS = table_of(ConsentRow).name

_INSERT_SESSION = insert_sql(BrowserSessionRow)
_INSERT_REQUEST = insert_sql(AuthorizationRequestRow)
_INSERT_CODE = insert_sql(AuthorizationCodeRow)
_MOVE_REQUESTS = both(lambda mark: f"UPDATE {_REQUESTS} SET session_hash = {mark(2)} WHERE session_hash = {mark(1)}")
_DELETE_SESSION = both(lambda mark: f"DELETE FROM {_SESSIONS} WHERE id_hash = {mark(1)}")
_SATISFY = both(lambda mark: f"UPDATE {_REQUESTS} SET prompt = {mark(2)}, max_age = NULL WHERE id = {mark(1)}")
_DELETE_REQUEST = both(lambda mark: f"DELETE FROM {_REQUESTS} WHERE id = {mark(1)}")
_PURGE_CODES = both(lambda mark: f"DELETE FROM {_CODES} WHERE expires_at < {mark(1)}")
_PURGE_REQUESTS = both(lambda mark: f"DELETE FROM {_REQUESTS} WHERE expires_at < {mark(1)}")
_ADD_CONSENT = both(
    lambda mark: (
        f"INSERT INTO {_CONSENTS} (sub, client_id, scopes, granted_at)"
        f" VALUES ({mark(1)}, {mark(2)}, {mark(3)}, {mark(4)}) ON CONFLICT (sub, client_id) DO NOTHING"
    )
)
_CONSENT_SCOPES = Sql(
    # PostgreSQL locks the row until the merge is written; SQLite holds the write lock already.
    f"SELECT scopes FROM {_CONSENTS} WHERE sub = $1 AND client_id = $2 FOR UPDATE",
    f"SELECT scopes FROM {_CONSENTS} WHERE sub = ?1 AND client_id = ?2",
)
_SET_CONSENT = both(
    lambda mark: (
        f"UPDATE {_CONSENTS} SET scopes = {mark(3)}, granted_at = {mark(4)}"
        f" WHERE sub = {mark(1)} AND client_id = {mark(2)}"
    )
)


async def save_session(
    database: Database,
    new: BrowserSessionRow,
    *,
    replaces: str | None = None,
    new_request: AuthorizationRequestRow | None = None,
    satisfied: AuthorizationRequestRow | None = None,
) -> None:
    """Store a new session; `replaces` (an old session's id hash) stops working and its pending
    requests move over; `new_request` is stored with it; `satisfied` has had its prompt=login and
    max_age met."""
    async with transaction(database) as tx:
        if replaces is not None:
            await tx.run(_MOVE_REQUESTS, replaces, new.id_hash)
            await tx.run(_DELETE_SESSION, replaces)
        await tx.run(_INSERT_SESSION, *row_values(new))
        if new_request is not None:
            new_request.session_hash = new.id_hash
            await tx.run(_INSERT_REQUEST, *row_values(new_request))
        if satisfied is not None:
            prompt = " ".join(p for p in satisfied.prompt.split() if p != "login")
            await tx.run(_SATISFY, satisfied.id, prompt)


async def save_code(
    database: Database,
    code: AuthorizationCodeRow,
    *,
    pending_id: str,
    consent: tuple[str, ...] | None,
    now: int,
    purge: bool,
) -> None:
    """Store the code and end its pending request; `consent` (scopes the user has just approved)
    is added to what the user has granted the client, in the same transaction: two approvals at
    once (two tabs) both succeed, the second merging into the first. `purge` sweeps codes an hour
    past expiry and expired requests."""
    async with transaction(database) as tx:
        if consent is not None:
            scopes = " ".join(consent)
            if not await tx.run(_ADD_CONSENT, code.sub, code.client_id, scopes, now):
                row = await tx.fetch_one(_CONSENT_SCOPES, code.sub, code.client_id)
                merged = " ".join(dict.fromkeys([*(row[0] if row else "").split(), *consent]))
                await tx.run(_SET_CONSENT, code.sub, code.client_id, merged, now)
        await tx.run(_INSERT_CODE, *row_values(code))
        await tx.run(_DELETE_REQUEST, pending_id)
        if purge:
            await tx.run(_PURGE_CODES, now - 3600)
            await tx.run(_PURGE_REQUESTS, now)
