"""The server's audit trail (`audit_log`): the only address of its rows.

Rows are appended in batches, each batch in one transaction that first takes the trail's write
lock (a transaction-scoped advisory lock on PostgreSQL; SQLite's write lock, which the store's
`BEGIN IMMEDIATE` already holds), then reads the last row and chains the batch after it. So
several server processes appending at once still make one chain: each batch starts where the
one committed before it ended. How an entry is chained is the caller's `seal` (the guard's
`bastion.guard.audit.seal`, one implementation for both trails); this module only numbers,
orders and stores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, literal, select, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import NullType

from bastion.store._sql import Executor, Sql, inserting, records, transaction, values
from bastion.store.models import audit_log

# The PostgreSQL advisory lock key of the trail's writers ("bastaudi" as a 64-bit integer).
ADVISORY_LOCK_KEY = 0x62617374_61756469
# The most rows one page of the trail carries.
PAGE = 1000


@dataclass(slots=True, frozen=True)
class AuditRow:
    seq: int
    time: float
    actor: str
    action: str
    object: str | None
    outcome: str
    request_id: str | None
    entry: str  # the entry's canonical JSON, the chained text
    hash: str


# (body, seq, hash of the previous entry or None for the first) -> the row of the chained entry.
Seal = Callable[[Mapping[str, Any], int, "str | None"], AuditRow]


def _lock(dialect: Dialect) -> ClauseElement:
    if dialect.name == "postgresql":
        return select(func.pg_advisory_xact_lock(literal(ADVISORY_LOCK_KEY)))
    return select(literal(1))  # SQLite: BEGIN IMMEDIATE took the write lock


_LOCK = Sql(_lock)
_LAST = Sql(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1))
_INSERT = inserting(audit_log)
# `time` as the drivers return it (a float): SQLAlchemy's asyncpg Float processor wants the
# column's type oid, which a statement compiled once does not have.
_COLUMNS = [type_coerce(c, NullType()).label(c.name) if c.name == "time" else c for c in audit_log.columns]
_AFTER = Sql(
    select(*_COLUMNS).where(audit_log.c.seq > bindparam("after")).order_by(audit_log.c.seq).limit(bindparam("limit")),
    "after",
    "limit",
)


async def append(on: Executor, bodies: Sequence[Mapping[str, Any]], seal: Seal) -> list[AuditRow]:
    """Chain `bodies` after the trail's last entry, in order, in one transaction; the rows written."""
    if not bodies:
        return []
    written = []
    async with transaction(on) as tx:
        await tx.rows(_LOCK)
        last = await tx.rows(_LAST)
        seq, prev = (int(last[0][0]), str(last[0][1])) if last else (0, None)
        for body in bodies:
            seq += 1
            row = seal(body, seq, prev)
            await tx.rows(_INSERT, *values(row))
            written.append(row)
            prev = row.hash
    return written


_AFTER_OF_ACTION = Sql(
    select(*_COLUMNS)
    .where(audit_log.c.seq > bindparam("after"), audit_log.c.action == bindparam("action"))
    .order_by(audit_log.c.seq)
    .limit(bindparam("limit")),
    "after",
    "action",
    "limit",
)


async def page(on: Executor, after_id: int = 0, limit: int = PAGE, action: str | None = None) -> list[AuditRow]:
    """At most `limit` rows of the trail in order, those numbered after `after_id` (0: from the
    first), only those of `action` when it is given."""
    if action is not None:
        return await records(on, _AFTER_OF_ACTION, AuditRow, after_id, action, limit)
    return await records(on, _AFTER, AuditRow, after_id, limit)
