"""Authorization codes and consents (`store.codes`, `store.consents`) on both databases: a code
is read with its user in one statement, spent exactly once even when two exchanges race (the
winner's refresh token stored with it), and stored in one transaction with its merged consent,
the end of its pending request and the sweep."""

from __future__ import annotations

import asyncio

import pytest

from bastion.store import codes, consents, pending_requests, refresh_tokens, transaction, users
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url, _rows.code("c-1", nonce="n"), pool_size=4):
        yield db


async def test_a_code_is_read_with_its_user_and_none_is_never_partial(database):
    """The code and its user in one statement; an unknown code is (None, None); a deleted user None."""
    await codes.insert(database, _rows.code("c-2", sub="gone"))

    code, user = await codes.with_user(database, "c-1")

    assert code == _rows.code("c-1", nonce="n")
    assert user == await users.get(database, "sub-a")
    assert await codes.with_user(database, "c-2") == (_rows.code("c-2", sub="gone"), None)
    assert await codes.with_user(database, "nope") == (None, None)


@pytest.mark.parametrize("with_refresh", [pytest.param(True, id="with-refresh"), pytest.param(False, id="alone")])
async def test_two_simultaneous_spends_give_exactly_one_winner(database, with_refresh):
    """Of two spends at once one wins, records what it issued and stores its refresh token; the
    loser stores nothing."""
    successors = [_rows.refresh_token(f"rt-{i}", family=f"fam-{i}") if with_refresh else None for i in range(2)]

    won = await asyncio.gather(
        *(
            codes.spend(
                database, "c-1", NOW + 1, access_jti=f"jti-{i}", access_exp=NOW + 60, family=f"fam-{i}", refresh=s
            )
            for i, s in enumerate(successors)
        )
    )

    assert sorted(won) == [False, True]
    winner = won.index(True)
    spent = await codes.get(database, "c-1")
    assert spent is not None
    assert (spent.used_at, spent.access_jti, spent.refresh_family) == (NOW + 1, f"jti-{winner}", f"fam-{winner}")
    stored = [await refresh_tokens.get(database, f"rt-{i}") for i in range(2)]
    assert stored == ([successors[winner] if i == winner else None for i in range(2)] if with_refresh else [None, None])


async def test_a_spent_code_cannot_be_spent_again(database):
    """A later spend of a used code loses and stores nothing."""
    assert await codes.spend(database, "c-1", NOW, access_jti="a", access_exp=NOW, family=None, refresh=None)

    again = await codes.spend(
        database, "c-1", NOW, access_jti="b", access_exp=NOW, family="f", refresh=_rows.refresh_token("rt")
    )

    assert not again
    assert await refresh_tokens.get(database, "rt") is None


async def _issue(database, code_hash: str, pending_id: str, consent: tuple[str, ...] | None) -> None:
    # What the flow engine does when it issues a code (server.flow.issue_code).
    async with transaction(database) as tx:
        if consent is not None:
            await consents.merge(tx, "sub-a", "c1", consent, NOW)
        await codes.insert(tx, _rows.code(code_hash, expires_at=NOW - 3601 if code_hash == "old" else NOW + 60))
        await pending_requests.end(tx, pending_id)


async def test_a_code_merges_its_consent_and_the_sweep_takes_only_what_expired(database):
    """Consents merge in order without duplicates; the request ends; the sweep removes only expired rows."""
    await _rows.store(
        database,
        _rows.pending_request("r1", "s"),
        _rows.pending_request("r2", "t", expires_at=NOW - 1),
        _rows.pending_request("r3", "t"),
    )

    await _issue(database, "old", "r1", ("openid", "email"))
    await _issue(database, "new", "none", ("profile", "openid"))
    # What the sweeper does (server.sweeper): codes an hour past expiry, expired requests.
    assert await codes.purge_expired(database, NOW - 3600, batch=100) == 1
    assert await pending_requests.purge_expired(database, NOW, batch=100) == 1

    _, granted = await consents.user_and_consent(database, "sub-a", "c1")
    assert granted == {"openid", "email", "profile"}
    assert await codes.get(database, "old") is None  # an hour past expiry
    assert await codes.get(database, "new") is not None
    assert await pending_requests.get(database, "r1", "s", NOW - 10) is None  # ended by its code
    assert await pending_requests.get(database, "r2", "t", NOW - 10) is None  # expired
    assert await pending_requests.get(database, "r3", "t", NOW) is not None


async def test_two_approvals_at_once_both_merge(database):
    """Two consents approved at once both succeed and leave the union (no duplicate-key error)."""
    await asyncio.gather(
        consents.merge(database, "sub-a", "c1", ("openid", "profile"), NOW),
        consents.merge(database, "sub-a", "c1", ("openid", "email"), NOW),
    )

    user, granted = await consents.user_and_consent(database, "sub-a", "c1")

    assert user is not None
    assert granted == {"openid", "profile", "email"}
    assert await consents.user_and_consent(database, "sub-a", "c2") == (user, frozenset())
    assert await consents.user_and_consent(database, "nobody", "c1") == (None, frozenset())
