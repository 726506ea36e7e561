"""`DatabaseApiKeyVerifier` against a real database (SQLite and PostgreSQL), keys written by
`store.api_keys` as `bastion apikeys` writes them: a valid key gives its system principal; a
revocation is seen once the cache time has passed, never later; every attacker's try (wrong
secret, unknown id, another key's id, revoked, expired, malformed) gets the same public error
after a constant-time comparison; a last use is written at most once per resolution, never by a
read-only verifier; and the cache stays bounded."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bastion.guard import Authenticator, InvalidApiKey, RequestGuard, require_scopes
from bastion.guard._apikey_reader import COLUMNS
from bastion.guard.apikeys import (
    PREFIX,
    ApiKeyRecord,
    DatabaseApiKeyVerifier,
    _checksum,
    checksum_ok,
    new_key,
)
from bastion.store import Database, api_keys
from bastion.store.api_keys import ApiKeyRow
from bastion.store.models import api_keys as api_keys_table
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio

PUBLIC = "The API key is invalid, expired or revoked."


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def _row(record: ApiKeyRecord) -> ApiKeyRow:
    return ApiKeyRow(
        record.key_id,
        record.owner,
        " ".join(record.scopes),
        record.sha256,
        int(record.created_at),
        None if record.expires_at is None else int(record.expires_at),
    )


async def stored(database: Database, owner: str = "billing", **options: float) -> tuple[str, ApiKeyRecord]:
    """A key created as the CLI creates it."""
    key, record = new_key(owner, ["notes:read"], NOW, **options)  # type: ignore[arg-type]
    await api_keys.create(database, _row(record))
    return key, record


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url, pool_size=2)
    await db.upgrade()
    yield db
    await db.dispose()


@pytest.fixture
async def verifier_for(db_url: str) -> AsyncIterator[Callable[..., DatabaseApiKeyVerifier]]:
    made: list[DatabaseApiKeyVerifier] = []

    def make(**options: object) -> DatabaseApiKeyVerifier:
        made.append(DatabaseApiKeyVerifier(db_url, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for verifier in made:
        await verifier.close()


def with_checksum(body: str) -> str:
    return body + _checksum(body)


def test_the_reader_names_the_columns_of_the_table() -> None:
    """The guard's reader reads the columns store.models defines, in order (it may not import them)."""
    assert [c.name for c in api_keys_table.columns] == list(COLUMNS)


async def test_a_valid_key_gives_its_system_principal(database, verifier_for) -> None:
    """A key stored in the database verifies to an api_key principal for its owner and scopes."""
    key, record = await stored(database)
    verifier = verifier_for(clock=Clock())

    principal = await verifier.verify(key)

    assert (principal.kind, principal.subject, principal.api_key_id) == ("api_key", "billing", record.key_id)
    assert principal.scopes == frozenset({"notes:read"})


async def test_a_revocation_is_seen_once_the_cache_time_has_passed(database, verifier_for) -> None:
    """A key revoked in the database is still accepted from the cache until cache_seconds have
    passed since it was read, and refused from then on."""
    clock = Clock()
    key, record = await stored(database)
    verifier = verifier_for(cache_seconds=30, clock=clock)
    await verifier.verify(key)
    assert await api_keys.revoke(database, record.key_id, NOW + 1)

    clock.now = NOW + 29.9
    cached = await verifier.verify(key)
    clock.now = NOW + 30
    with pytest.raises(InvalidApiKey) as caught:
        await verifier.verify(key)

    assert cached.api_key_id == record.key_id
    assert (caught.value.description, caught.value.detail) == (PUBLIC, "expired or revoked")


async def test_without_a_cache_a_revocation_is_seen_at_once(database, verifier_for) -> None:
    """cache_seconds=0 reads the row on every verification."""
    key, record = await stored(database)
    verifier = verifier_for(cache_seconds=0, clock=Clock())
    await verifier.verify(key)
    await api_keys.revoke(database, record.key_id, NOW)

    with pytest.raises(InvalidApiKey):
        await verifier.verify(key)


def _wrong_secret(key: str, _other: str) -> str:
    secret_start = len(PREFIX) + 13
    flipped = "A" if key[secret_start] != "A" else "B"
    return with_checksum(key[:secret_start] + flipped + key[secret_start + 1 : -6])


def _unknown_id(key: str, _other: str) -> str:
    return with_checksum(PREFIX + "Z" * 12 + key[len(PREFIX) + 12 : -6])


def _other_keys_id(key: str, other: str) -> str:
    """The other key's id with this key's secret: a valid checksum, a secret of no key."""
    return with_checksum(other[: len(PREFIX) + 12] + key[len(PREFIX) + 12 : -6])


@pytest.mark.parametrize(
    ("forge", "detail"),
    [
        pytest.param(_wrong_secret, "unknown key", id="wrong-secret"),
        pytest.param(_unknown_id, "unknown key", id="unknown-key-id"),
        pytest.param(_other_keys_id, "unknown key", id="another-keys-id"),
        pytest.param(lambda key, _o: key[:-1] + ("a" if key[-1] != "a" else "b"), "bad format or checksum",
                     id="bad-checksum"),
        pytest.param(lambda _k, _o: "", "bad format or checksum", id="empty"),
        pytest.param(lambda key, _o: key + "x", "bad format or checksum", id="too-long"),
    ],
)  # fmt: skip
async def test_an_attackers_try_gets_the_one_public_error(database, verifier_for, forge, detail) -> None:
    """A forged key is refused with InvalidApiKey and the same public description as any other."""
    key, _ = await stored(database)
    other, _ = await stored(database, "reports")
    verifier = verifier_for(clock=Clock())
    forged = forge(key, other)
    assert forged not in (key, other)

    with pytest.raises(InvalidApiKey) as caught:
        await verifier.verify(forged)

    assert (caught.value.error, caught.value.description, caught.value.detail) == ("invalid_api_key", PUBLIC, detail)


@pytest.mark.parametrize("state", ["revoked", "expired", "rotated-past-overlap"])
async def test_a_key_no_longer_active_gets_the_one_public_error(database, verifier_for, state) -> None:
    """Revoked, expired, and rotated keys past their overlap are refused like a forged key."""
    clock = Clock()
    key, record = await stored(database, expires_in=60) if state == "expired" else await stored(database)
    if state == "revoked":
        await api_keys.revoke(database, record.key_id, NOW)
    if state == "rotated-past-overlap":
        _, successor = new_key("billing", ["notes:read"], NOW)
        assert await api_keys.rotate(database, record.key_id, _row(successor), 10) is not None
    clock.now = NOW + 60
    verifier = verifier_for(clock=clock)

    with pytest.raises(InvalidApiKey) as caught:
        await verifier.verify(key)

    assert (caught.value.description, caught.value.detail) == (PUBLIC, "expired or revoked")


async def test_keys_are_compared_in_constant_time_whatever_the_id(database, verifier_for, monkeypatch) -> None:
    """A wrong secret and an unknown key id both cost one hmac.compare_digest of two 64-character
    digests: the answer's timing does not tell a known id from an unknown one."""
    key, _ = await stored(database)
    verifier = verifier_for(clock=Clock())
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for forged in (_wrong_secret(key, key), _unknown_id(key, key)):
        compared.clear()
        with pytest.raises(InvalidApiKey):
            await verifier.verify(forged)
        assert compared[-1] == (64, 64)  # the checksum's own comparison comes first


async def test_a_last_use_is_written_once_per_resolution(database, verifier_for) -> None:
    """Verifications write last_used_at at most once per last_used_resolution; None never writes."""
    clock = Clock()
    key, record = await stored(database)
    read_only_key, read_only = await stored(database, "reports")
    verifier = verifier_for(cache_seconds=0, last_used_resolution=60, clock=clock)
    read_only_verifier = verifier_for(cache_seconds=0, last_used_resolution=None, clock=clock)

    uses = []
    for at in (NOW + 1, NOW + 30, NOW + 61):
        clock.now = at
        await verifier.verify(key)
        await read_only_verifier.verify(read_only_key)
        uses.append((await api_keys.get(database, record.key_id)).last_used_at)  # type: ignore[union-attr]

    assert uses == [NOW + 1, NOW + 1, NOW + 61]
    assert (await api_keys.get(database, read_only.key_id)).last_used_at is None  # type: ignore[union-attr]


async def test_the_cache_forgets_the_oldest_key_id_past_its_bound(database, verifier_for) -> None:
    """Key ids sent at random cannot grow the cache past max_cached."""
    key, _ = await stored(database)
    verifier = verifier_for(max_cached=2, clock=Clock())
    for forged in ("A", "B", "C"):
        with pytest.raises(InvalidApiKey):
            await verifier.verify(with_checksum(PREFIX + forged * 12 + key[len(PREFIX) + 12 : -6]))

    assert len(verifier._cache) == 2


async def test_the_request_guard_awaits_a_database_verifier(database, verifier_for) -> None:
    """RequestGuard takes the verifier as api_keys: a route accepting API keys gets the principal."""
    key, record = await stored(database)
    guard = RequestGuard(Authenticator(), api_keys=verifier_for(clock=Clock()))
    requirement = require_scopes("notes:read", accept=["api_key"])

    principal = await guard.check(requirement, [(b"x-api-key", key.encode())], b"")

    assert principal.api_key_id == record.key_id


def test_checksums_of_forged_keys_are_valid() -> None:
    """The forging helpers above make keys that pass the checksum (they test the lookup)."""
    key, _ = new_key("x", [], NOW)
    assert checksum_ok(_wrong_secret(key, key))
    assert checksum_ok(_unknown_id(key, key))


async def test_requests_in_flight_share_one_read_of_a_key(database, verifier_for) -> None:
    """Twenty verifications of a key not yet cached, at once, read its row once and write its last
    use once."""
    key, _ = await stored(database)
    verifier = verifier_for(last_used_resolution=60, clock=Clock())
    calls: list[str] = []
    read, touch = verifier.reader.get, verifier.reader.touch

    async def counted_read(key_id: str) -> object:
        calls.append("read")
        return await read(key_id)

    async def counted_touch(key_id: str, now: int, before: int) -> None:
        calls.append("touch")
        await touch(key_id, now, before)

    verifier.reader.get = counted_read  # type: ignore[method-assign]
    verifier.reader.touch = counted_touch  # type: ignore[method-assign]
    principals = await asyncio.gather(*(verifier.verify(key) for _ in range(20)))

    assert {p.subject for p in principals} == {"billing"}
    assert calls == ["read", "touch"]


@pytest.fixture
async def role_url(db_url: str) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Makes PostgreSQL login roles with the given grants on api_keys; their database URLs."""
    if not db_url.startswith("postgresql"):
        pytest.skip("roles and grants are PostgreSQL's")
    import asyncpg

    plain = db_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(plain)
    roles: list[str] = []

    async def make(grants: str) -> str:
        roles.append(f"bastion_api_{uuid.uuid4().hex[:12]}")
        await admin.execute(f'CREATE ROLE "{roles[-1]}" LOGIN')
        await admin.execute(f'GRANT {grants} ON api_keys TO "{roles[-1]}"')
        return f"postgresql://{roles[-1]}@{plain.split('@', 1)[-1]}"

    try:
        yield make
    finally:
        for role in roles:
            await admin.execute(f'REVOKE ALL ON api_keys FROM "{role}"')
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


async def test_the_grants_an_apis_role_needs(database, role_url, caplog) -> None:
    """SELECT alone verifies keys (with last_used_resolution=None silently; with the default the
    refused write of the last use is a warning, the key still accepted); SELECT with UPDATE
    (last_used_at) also records the last use."""
    key, record = await stored(database)
    select_only = await role_url("SELECT")
    read_only = DatabaseApiKeyVerifier(select_only, last_used_resolution=None, clock=Clock())
    refused = DatabaseApiKeyVerifier(select_only, clock=Clock())
    writing = DatabaseApiKeyVerifier(await role_url("SELECT, UPDATE (last_used_at)"), clock=Clock())
    try:
        with caplog.at_level("WARNING", logger="bastion.guard.apikeys"):
            quiet = await read_only.verify(key)
            quiet_logs = list(caplog.records)
            refused_write = await refused.verify(key)
            unused = await api_keys.get(database, record.key_id)
            written = await writing.verify(key)
    finally:
        for verifier in (read_only, refused, writing):
            await verifier.close()
    used = await api_keys.get(database, record.key_id)

    assert quiet.api_key_id == refused_write.api_key_id == written.api_key_id == record.key_id
    assert quiet_logs == []
    assert [r.getMessage() for r in caplog.records] == [
        "could not record an API key's last use (ProgrammingError); a read-only role takes last_used_resolution=None"
    ]
    assert unused is not None
    assert unused.last_used_at is None
    assert used is not None
    assert used.last_used_at == NOW
