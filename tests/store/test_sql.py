"""The one way the store runs SQL (`store._sql`), on both databases: a statement is compiled once
per dialect, values keep their Python types through SQLAlchemy's own processors (SQLite's
integer booleans come back as bool, NULLs as None, bytes as bytes), and a transaction commits
whole or not at all."""

from __future__ import annotations

from dataclasses import fields

import pytest
from sqlalchemy import Table

from bastion.store import clients, codes, transaction, users
from bastion.store import models as tables
from bastion.store._sql import Sql
from bastion.store.api_keys import ApiKeyRow
from bastion.store.audit import AuditRow
from bastion.store.clients import ClientRow, ClientSecretRow
from bastion.store.codes import AuthorizationCodeRow
from bastion.store.consents import ConsentRow
from bastion.store.device_codes import DeviceCodeRow
from bastion.store.pending_requests import AuthorizationRequestRow
from bastion.store.refresh_tokens import RefreshTokenRow
from bastion.store.revocations import RevokedTokenRow, UsedAssertionRow
from bastion.store.sessions import BrowserSessionRow
from bastion.store.signing_keys import SigningKeyRow
from bastion.store.users import RecoveryCodeRow, UserRow
from tests.store import _rows

pytestmark = pytest.mark.anyio

RECORDS: list[tuple[type, Table]] = [
    (ClientRow, tables.clients),
    (ClientSecretRow, tables.client_secrets),
    (SigningKeyRow, tables.signing_keys),
    (RevokedTokenRow, tables.revoked_tokens),
    (UsedAssertionRow, tables.used_assertions),
    (UserRow, tables.users),
    (RecoveryCodeRow, tables.recovery_codes),
    (BrowserSessionRow, tables.browser_sessions),
    (ConsentRow, tables.consents),
    (AuthorizationRequestRow, tables.authorization_requests),
    (AuthorizationCodeRow, tables.authorization_codes),
    (RefreshTokenRow, tables.refresh_tokens),
    (DeviceCodeRow, tables.device_codes),
    (ApiKeyRow, tables.api_keys),
    (AuditRow, tables.audit_log),
]


@pytest.fixture
async def database(db_url: str):
    async for db in _rows.database_with(db_url):
        yield db


def test_every_table_has_one_record_whose_fields_are_its_columns_in_order():
    """Each record type lists its table's columns, in table order, and nothing else."""
    assert {table.name for _, table in RECORDS} == set(tables.metadata.tables)
    for record, table in RECORDS:
        assert [f.name for f in fields(record)] == [c.name for c in table.columns], record.__name__


async def test_a_statement_is_compiled_once_per_dialect(database):
    """The second call reuses the first call's compiled SQL, bind order and processors."""
    statement = Sql(tables.users.select().where(tables.users.c.sub == tables.users.c.sub))
    async with database.engine.connect() as conn:
        dialect = conn.dialect

    first = statement.compiled(dialect)

    assert statement.compiled(dialect) is first
    assert first.sql.startswith("SELECT users.sub, users.username")


async def test_booleans_bytes_and_nulls_come_back_as_python_values(database):
    """Booleans both ways, bytes and NULL survive a write and a read, on both databases."""
    await _rows.store(
        database,
        _rows.user("sub-b", "bob", enabled=False, email_verified=True, totp_secret=b"\x00\xff", totp_last_step=None),
        _rows.client("c3", pkce_optional_with_nonce=True, introspect=False, token_lifetime=None, jwks=None),
    )

    bob = await users.get(database, "sub-b")
    c3 = await clients.get(database, "c3")

    assert bob == _rows.user("sub-b", "bob", enabled=False, email_verified=True, totp_secret=b"\x00\xff")
    assert (type(bob.enabled), type(bob.email_verified), type(bob.totp_secret)) == (bool, bool, bytes)
    assert c3 == _rows.client("c3", pkce_optional_with_nonce=True)
    assert c3.pkce_optional_with_nonce is True
    assert c3.introspect is False
    assert c3.token_lifetime is None


async def _abandon(database, code_hash: str, *, nested: bool) -> None:
    """Insert a code in a transaction (`nested`: in one joined by a second) and raise."""
    async with transaction(database) as outer:
        if nested:
            async with transaction(outer) as inner:
                assert inner is outer
                await codes.insert(inner, _rows.code(code_hash))
        else:
            await codes.insert(outer, _rows.code(code_hash))
        raise RuntimeError("abandon")


async def test_a_transaction_that_raises_leaves_nothing_behind(database):
    """Every statement of a failed transaction is rolled back; a committed one is kept whole."""
    with pytest.raises(RuntimeError, match="abandon"):
        await _abandon(database, "c-0", nested=False)
    async with transaction(database) as tx:
        await codes.insert(tx, _rows.code("c-2"))
        await codes.insert(tx, _rows.code("c-3"))

    assert await codes.get(database, "c-0") is None
    assert await codes.get(database, "c-2") is not None
    assert await codes.get(database, "c-3") is not None


async def test_a_transaction_given_a_transaction_joins_it(database):
    """A unit of work composed of others is one transaction: the inner one does not commit alone."""
    with pytest.raises(RuntimeError, match="abandon"):
        await _abandon(database, "c-1", nested=True)

    assert await codes.get(database, "c-1") is None


async def test_a_single_statement_write_is_committed_on_its_own(database):
    """Outside a transaction a write commits by itself: another connection sees it at once."""
    await codes.insert(database, _rows.code("c-1"))

    async with database.engine.connect() as conn:
        found = (await conn.execute(tables.authorization_codes.select())).all()

    assert [row.code_hash for row in found] == ["c-1"]
