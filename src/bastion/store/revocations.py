"""Revoked access tokens (`revoked_tokens`) and the client-assertion replay cache
(`used_assertions`): the only address of those rows.

A revoked jti is denied until its `exp` (RFC 7009); a client assertion's jti is remembered until
it can no longer be accepted (RFC 7523 §3 item 7), and a second use is told apart from the first
by `ON CONFLICT DO NOTHING ... RETURNING`, never by a driver's duplicate-key error.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select

from bastion.store._sql import Executor, Sql, inserting, purging, records, row, rows, transaction
from bastion.store.models import revoked_tokens, used_assertions

# An assertion is accepted until exp + clock_leeway, so its jti must be remembered that long.
# 300 s is the largest clock_leeway Settings accepts; forgetting a jti at exp let an assertion
# be replayed inside the leeway window (RFC 7523 §3 item 7).
ASSERTION_REPLAY_MARGIN = 300
# A token is accepted until exp + clock_leeway, so its revocation is kept that long (at most 300 s).
REVOCATION_MARGIN = 300
# The most revocations one answer of the revocation list carries.
PAGE = 10_000


@dataclass(slots=True, frozen=True)
class RevokedTokenRow:
    jti: str
    client_id: str
    exp: int
    revoked_at: int


@dataclass(slots=True, frozen=True)
class UsedAssertionRow:
    client_id: str
    jti: str
    exp: int


_RECORD = inserting(revoked_tokens, unless_conflict=True)
_IS_REVOKED = Sql(select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == bindparam("jti")), "jti")
_SINCE = Sql(
    select(revoked_tokens)
    .where(revoked_tokens.c.revoked_at >= bindparam("since"), revoked_tokens.c.exp > bindparam("now"))
    .order_by(revoked_tokens.c.revoked_at)
    .limit(PAGE),
    "since",
    "now",
)
_FORGET_ASSERTIONS = Sql(delete(used_assertions).where(used_assertions.c.exp < bindparam("before")), "before")
_USE_ASSERTION = inserting(used_assertions, unless_conflict=True)
_PURGE_REVOKED = purging(revoked_tokens, revoked_tokens.c.exp < bindparam("before"), "before")
_PURGE_ASSERTIONS = purging(used_assertions, used_assertions.c.exp < bindparam("before"), "before")


async def record(on: Executor, jti: str, client_id: str, exp: int, now: int) -> None:
    """Deny `jti` until `exp`; a jti revoked before keeps its first record."""
    await rows(on, _RECORD, jti, client_id, exp, now)


async def is_revoked(on: Executor, jti: str) -> bool:
    return await row(on, _IS_REVOKED, jti) is not None


async def since(on: Executor, since: int, now: int) -> list[RevokedTokenRow]:
    """Unexpired revocations made at or after `since`, oldest first, at most `PAGE`."""
    return await records(on, _SINCE, RevokedTokenRow, since, now)


async def use_assertion(on: Executor, client_id: str, jti: str, exp: int, now: int) -> bool:
    """Forget assertions that can no longer be accepted, then record this one's jti, in one
    transaction; False if it was already used (a replay)."""
    async with transaction(on) as tx:
        await tx.rows(_FORGET_ASSERTIONS, now - ASSERTION_REPLAY_MARGIN)
        return bool(await tx.rows(_USE_ASSERTION, client_id, jti, exp))


async def purge_revoked(on: Executor, now: int, *, batch: int) -> int:
    """Forget at most `batch` revocations of tokens no validator accepts any more at `now`; how many."""
    return len(await rows(on, _PURGE_REVOKED, now - REVOCATION_MARGIN, batch))


async def purge_used_assertions(on: Executor, now: int, *, batch: int) -> int:
    """Forget at most `batch` client-assertion jtis that can no longer be accepted at `now`; how many."""
    return len(await rows(on, _PURGE_ASSERTIONS, now - ASSERTION_REPLAY_MARGIN, batch))
