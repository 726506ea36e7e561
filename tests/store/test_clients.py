"""Clients, their secrets and signing keys (`store.clients`, `store.signing_keys`) on both
databases: what the registry, CORS, the CLI and the key ring read and write."""

from __future__ import annotations

import pytest

from bastion.store import clients, signing_keys, transaction
from bastion.store.signing_keys import SigningKeyRow
from tests.store import _rows
from tests.store._rows import NOW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(db_url: str):
    rows = [
        _rows.client("spa", redirect_uris="https://a.example/cb https://b.example/cb", created_at=NOW + 1),
        _rows.client("off", redirect_uris="https://off.example/cb", enabled=False, created_at=NOW + 2),
        _rows.client("web", client_type="confidential", redirect_uris="https://web.example/cb", created_at=NOW + 3),
    ]
    async for db in _rows.database_with(db_url, *rows):
        yield db


async def test_clients_are_read_listed_and_disabled(database):
    """A client reads back as stored; the list is oldest first; disabling an unknown one is False."""
    assert await clients.get(database, "spa") == _rows.client(
        "spa", redirect_uris="https://a.example/cb https://b.example/cb", created_at=NOW + 1
    )
    assert [c.client_id for c in await clients.list_all(database)] == ["c1", "c2", "spa", "off", "web"]
    assert await clients.set_enabled(database, "spa", False, NOW + 9)
    assert not await clients.set_enabled(database, "nope", False, NOW + 9)
    disabled = await clients.get(database, "spa")
    assert disabled is not None
    assert (disabled.enabled, disabled.updated_at) == (False, NOW + 9)


async def test_cors_reads_the_redirect_uris_of_enabled_public_clients(database):
    """Only enabled public clients' redirect URIs are returned."""
    assert sorted(await clients.public_redirect_uris(database)) == ["https://a.example/cb", "https://b.example/cb"]


async def test_a_rotation_ends_earlier_secrets_at_the_overlap(database):
    """Expiring at `at` stops current secrets then, and pulls in a later end; expired ones are not valid."""
    async with transaction(database) as tx:
        await clients.add_secret(tx, "web", "h1", NOW)
        await clients.expire_secrets(tx, "web", NOW + 100)
        await clients.add_secret(tx, "web", "h2", NOW + 1)

    assert await clients.valid_secret_hashes(database, "web", NOW + 99) == ["h1", "h2"]
    await clients.expire_secrets(database, "web", NOW + 50)
    assert await clients.valid_secret_hashes(database, "web", NOW + 50) == []
    assert await clients.valid_secret_hashes(database, "web", NOW + 49) == ["h1", "h2"]


async def test_signing_keys_are_listed_by_activation_and_retired(database):
    """Keys come back in the order they start signing; retiring one records the time."""
    later = SigningKeyRow("k2", "ES256", b"\x01blob", "{}", NOW, NOW + 10, None)
    sooner = SigningKeyRow("k1", "ES256", b"\x02blob", "{}", NOW, NOW, None)
    await signing_keys.insert(database, later)
    await signing_keys.insert(database, sooner)

    await signing_keys.retire(database, "k1", NOW + 5)

    assert [k.kid for k in await signing_keys.list_all(database)] == ["k1", "k2"]
    assert await signing_keys.get(database, "k2") == later
    assert {k.kid: k.retired_at for k in await signing_keys.of_alg(database, "ES256")} == {"k1": NOW + 5, "k2": None}
    assert await signing_keys.of_alg(database, "RS256") == []
    assert await signing_keys.get(database, "nope") is None
