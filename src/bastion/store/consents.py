"""Consents (`consents`): the scopes each user has granted each client; the only address of
those rows.

Approvals merge: a consent approved in two tabs at once must not fail the second with a
duplicate key, so a new consent is inserted unless one exists, and otherwise merged into it
under a row lock (PostgreSQL `FOR UPDATE`; SQLite's transaction holds the write lock already).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select, update

from bastion.store import users
from bastion.store._sql import Executor, Sql, inserting, row, transaction
from bastion.store.models import consents
from bastion.store.models import users as users_table
from bastion.store.users import UserRow


@dataclass(slots=True, frozen=True)
class ConsentRow:
    sub: str
    client_id: str
    scopes: str  # space-separated, the union of what was approved
    granted_at: int


_key = (consents.c.sub == bindparam("sub"), consents.c.client_id == bindparam("client_id"))
_INSERT = inserting(consents, unless_conflict=True)
_SCOPES_FOR_UPDATE = Sql(select(consents.c.scopes).where(*_key).with_for_update(), "sub", "client_id")
_SET_SCOPES = Sql(
    update(consents).where(*_key).values(scopes=bindparam("scopes"), granted_at=bindparam("now")),
    "sub",
    "client_id",
    "scopes",
    "now",
)
_USER_AND_SCOPES = Sql(
    select(users_table, consents.c.scopes)
    .select_from(
        users_table.outerjoin(
            consents, and_(consents.c.sub == users_table.c.sub, consents.c.client_id == bindparam("client_id"))
        )
    )
    .where(users_table.c.sub == bindparam("sub")),
    "sub",
    "client_id",
)


async def merge(on: Executor, sub: str, client_id: str, scopes: tuple[str, ...], now: int) -> None:
    """Add `scopes` to what the user has granted the client (a new consent, or the union with
    the stored one, in the stored order then the new)."""
    async with transaction(on) as tx:
        if await tx.rows(_INSERT, sub, client_id, " ".join(scopes), now):
            return
        found = await tx.rows(_SCOPES_FOR_UPDATE, sub, client_id)
        stored = found[0][0].split() if found else []
        merged = " ".join(dict.fromkeys([*stored, *scopes]))
        await tx.rows(_SET_SCOPES, sub, client_id, merged, now)


async def user_and_consent(on: Executor, sub: str, client_id: str) -> tuple[UserRow | None, frozenset[str]]:
    """The user and the scopes they have granted the client: one statement."""
    found = await row(on, _USER_AND_SCOPES, sub, client_id)
    if found is None:
        return None, frozenset()
    return users.from_joined(found), frozenset((found[users.WIDTH] or "").split())
