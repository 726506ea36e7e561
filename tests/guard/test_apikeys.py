"""API keys: format, hashing, rotation with overlap and last use through ApiKeyManager (the CLI, on
the database, is tests/cli/test_apikeys_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.guard import InvalidApiKey
from bastion.guard.apikeys import ApiKeyManager, JsonFileApiKeyStore, MemoryApiKeyStore, checksum_ok


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_key_format_prefix_and_checksum() -> None:
    """Keys carry the bsk_ prefix, a key id and a checksum that scanners can check."""
    key, record = ApiKeyManager(MemoryApiKeyStore()).create("billing", ["notes:read"])

    assert key.startswith(f"bsk_{record.key_id}_")
    assert len(key) == 4 + 12 + 1 + 43 + 6
    assert checksum_ok(key)
    assert not checksum_ok(key[:-1] + ("0" if key[-1] != "0" else "1"))


def test_only_a_hash_is_stored(tmp_path: Path) -> None:
    """The store never contains the key itself."""
    key, _ = ApiKeyManager(JsonFileApiKeyStore(tmp_path / "k.json")).create("billing")

    assert key not in (tmp_path / "k.json").read_text()
    assert oct((tmp_path / "k.json").stat().st_mode & 0o777) == "0o600"


def test_verify_identifies_the_system() -> None:
    """A valid key yields an api_key principal for its owner, with its scopes."""
    manager = ApiKeyManager(MemoryApiKeyStore())
    key, record = manager.create("billing", ["notes:read"])
    principal = manager.verify(key)

    assert (principal.kind, principal.subject, principal.api_key_id) == ("api_key", "billing", record.key_id)
    assert principal.scopes == frozenset({"notes:read"})


@pytest.mark.parametrize(
    ("mutate", "detail"),
    [
        pytest.param(lambda k: "bsk_short", "bad format or checksum", id="format"),
        pytest.param(lambda k: k[:20] + ("a" if k[20] != "a" else "b") + k[21:], "bad format or checksum", id="typo"),
        pytest.param(lambda k: "ghp_" + k[4:], "bad format or checksum", id="prefix"),
    ],
)
def test_verify_refuses_bad_keys(mutate: object, detail: str) -> None:
    """Malformed keys are refused before any lookup."""
    manager = ApiKeyManager(MemoryApiKeyStore())
    key, _ = manager.create("billing")
    with pytest.raises(InvalidApiKey) as caught:
        manager.verify(mutate(key))  # type: ignore[operator]

    assert caught.value.detail == detail


def test_unknown_key_with_valid_checksum_is_refused() -> None:
    """A well-formed key that was never issued here is refused."""
    other, _ = ApiKeyManager(MemoryApiKeyStore()).create("x")
    with pytest.raises(InvalidApiKey) as caught:
        ApiKeyManager(MemoryApiKeyStore()).verify(other)

    assert caught.value.detail == "unknown key"


def test_rotation_overlap_then_old_key_expires() -> None:
    """After rotation both keys work during the overlap; then only the new one."""
    clock = Clock()
    manager = ApiKeyManager(MemoryApiKeyStore(), clock=clock)
    old, old_record = manager.create("billing", ["notes:read"])
    new, new_record = manager.rotate(old_record.key_id, overlap=60)

    assert manager.verify(old).api_key_id == old_record.key_id
    assert manager.verify(new).api_key_id == new_record.key_id
    clock.now += 60
    with pytest.raises(InvalidApiKey):
        manager.verify(old)
    assert manager.verify(new).scopes == frozenset({"notes:read"})


def test_revoked_key_is_refused() -> None:
    """Revocation stops a key immediately."""
    manager = ApiKeyManager(MemoryApiKeyStore())
    key, record = manager.create("billing")
    manager.revoke(record.key_id)
    with pytest.raises(InvalidApiKey) as caught:
        manager.verify(key)

    assert caught.value.detail == "expired or revoked"


def test_last_used_is_recorded_at_a_resolution() -> None:
    """The last-used time is written, but at most once per resolution."""
    clock = Clock()
    store = MemoryApiKeyStore()
    manager = ApiKeyManager(store, clock=clock, last_used_resolution=60)
    key, record = manager.create("billing")
    manager.verify(key)
    clock.now += 30
    manager.verify(key)
    assert store.get(record.key_id).last_used_at == 1_000.0  # type: ignore[union-attr]
    clock.now += 31
    manager.verify(key)

    assert store.get(record.key_id).last_used_at == 1_061.0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_api_key_header_name_is_configurable() -> None:
    """The API key header name is a setting of the guard (X-API-Key by default)."""
    from bastion.guard import Authenticator, RequestGuard, require_scopes

    manager = ApiKeyManager(MemoryApiKeyStore())
    key, record = manager.create("billing", ["notes:read"])
    guard = RequestGuard(Authenticator(), api_keys=manager, api_key_header="Api-Key")
    requirement = require_scopes("notes:read", accept=["api_key"])

    principal = await guard.check(requirement, [(b"api-key", key.encode())], b"")

    assert principal is not None
    assert principal.api_key_id == record.key_id


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_a_file_store_whose_file_was_imported_says_where_keys_went(tmp_path: Path, caplog) -> None:
    """A JsonFileApiKeyStore whose file `bastion apikeys` imported and renamed logs one warning
    naming DatabaseApiKeyVerifier, and refuses the keys (it has none)."""
    manager = ApiKeyManager(JsonFileApiKeyStore(tmp_path / "apikeys.json"))
    key, _ = manager.create("billing")
    (tmp_path / "apikeys.json").rename(tmp_path / "apikeys.json.imported")

    with caplog.at_level("WARNING", logger="bastion.guard.apikeys"):
        for _ in range(2):
            with pytest.raises(InvalidApiKey):
                manager.verify(key)

    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'apikeys.json'} was imported into Bastion's database by `bastion apikeys` and renamed;"
        " verify keys with DatabaseApiKeyVerifier(database_url)"
    ]
