"""Revoked access tokens (`revoked_tokens`) and the client-assertion replay cache
(`used_assertions`): the only address of those rows.

A revoked jti is denied until its `exp` (RFC 7009); a client assertion's jti is remembered until
it can no longer be accepted (RFC 7523 §3 item 7), and a second use is told apart from the first
by `ON CONFLICT DO NOTHING ... RETURNING`, never by a driver's duplicate-key error.

The revocation list is read in pages ordered by `(revoked_at, jti)`, each starting strictly after
the last row of the one before: a key no two rows share, so ties in `revoked_at` (whole seconds)
are neither skipped nor repeated from one page to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, or_, select

from bastion.store._sql import Executor, Sql, inserting, purging, records, row, rows, transaction
from bastion.store.models import revoked_tokens, used_assertions

# A token or an assertion is accepted until exp + clock_leeway, so its jti must be remembered that
# long. 300 s is the largest clock_leeway Settings accepts; forgetting a jti at exp let an
# assertion be replayed (RFC 7523 §3 item 7), and a revoked token be accepted again by a resource
# server that learnt of it late, inside the leeway window (RFC 9068 §4).
LEEWAY_MARGIN = 300
ASSERTION_REPLAY_MARGIN = LEEWAY_MARGIN
REVOCATION_MARGIN = LEEWAY_MARGIN
# The most revocations one page of the revocation list carries.
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
_AFTER = Sql(
    select(revoked_tokens)
    .where(
        or_(
            revoked_tokens.c.revoked_at > bindparam("revoked_at"),
            and_(revoked_tokens.c.revoked_at == bindparam("revoked_at"), revoked_tokens.c.jti > bindparam("jti")),
        ),
        revoked_tokens.c.exp > bindparam("expired_before"),
    )
    .order_by(revoked_tokens.c.revoked_at, revoked_tokens.c.jti)
    .limit(bindparam("limit")),
    "revoked_at",
    "jti",
    "expired_before",
    "limit",
)
_FORGET_ASSERTIONS = Sql(delete(used_assertions).where(used_assertions.c.exp < bindparam("before")), "before")
_USE_ASSERTION = inserting(used_assertions, unless_conflict=True)
_PURGE_REVOKED = purging(revoked_tokens, revoked_tokens.c.exp < bindparam("before"), "before")
_PURGE_ASSERTIONS = purging(used_assertions, used_assertions.c.exp < bindparam("before"), "before")


async def record(on: Executor, jti: str, client_id: str, exp: int, now: int) -> None:
    """Deny `jti`; a jti revoked before keeps its first record."""
    await rows(on, _RECORD, jti, client_id, exp, now)


async def is_revoked(on: Executor, jti: str) -> bool:
    return await row(on, _IS_REVOKED, jti) is not None


async def page(on: Executor, after: tuple[int, str], now: int, limit: int = PAGE) -> list[RevokedTokenRow]:
    """At most `limit` revocations ordered by `(revoked_at, jti)`, strictly after `after`, of
    tokens a validator may still accept (`exp` less than `LEEWAY_MARGIN` ago).

    `(t, "")` starts at the first revocation made at second `t` (a jti is never empty)."""
    return await records(on, _AFTER, RevokedTokenRow, after[0], after[1], now - LEEWAY_MARGIN, limit)


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
