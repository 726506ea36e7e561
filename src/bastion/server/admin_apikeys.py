"""Administrative operations on API keys of calling systems: the one layer the CLI
(`bastion apikeys`) and the admin HTTP API (`/admin/apikeys`) share, so both check, refuse and
audit alike (`admin.Actor`).

A key is answered once, by `create_key` and `rotate_key`, and stored only as its SHA-256; a
listing never holds a key or its hash.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from bastion.guard.apikeys import ApiKeyRecord, new_key
from bastion.server.admin import CLI, Actor, AdminError, UnknownObject
from bastion.store import Database
from bastion.store import api_keys as store
from bastion.store.api_keys import ApiKeyRow

MAX_OWNER = 200
MAX_OVERLAP = 30 * 86_400
DEFAULT_OVERLAP = 86_400


def row_of(record: ApiKeyRecord) -> ApiKeyRow:
    """The database row of a key record (whole seconds)."""

    def whole(seconds: float | None) -> int | None:
        return None if seconds is None else int(seconds)

    return ApiKeyRow(
        key_id=record.key_id,
        owner=record.owner,
        scopes=" ".join(record.scopes),
        sha256=record.sha256,
        created_at=int(record.created_at),
        expires_at=whole(record.expires_at),
        revoked_at=whole(record.revoked_at),
        last_used_at=whole(record.last_used_at),
        replaced_by=record.replaced_by,
    )


def describe(row: ApiKeyRow) -> dict[str, Any]:
    """A key's row without its hash (the fields of the previous release's JSON file)."""
    return {
        "key_id": row.key_id,
        "owner": row.owner,
        "scopes": row.scopes.split(),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
        "replaced_by": row.replaced_by,
    }


def check_new(owner: str, expires_in: int | None) -> None:
    """The checks of a new key, before anything is stored."""
    if not owner.strip() or len(owner) > MAX_OWNER:
        raise AdminError(f"--owner must be 1-{MAX_OWNER} characters")
    if expires_in is not None and expires_in <= 0:
        raise AdminError("--expires-in must be a positive number of seconds")


def check_overlap(overlap: int) -> None:
    if not 0 <= overlap <= MAX_OVERLAP:
        raise AdminError(f"--overlap must be 0-{MAX_OVERLAP} seconds")


async def list_keys(database: Database) -> list[dict[str, Any]]:
    """Every key, oldest first: ids, owners, scopes, times; never a key or its hash."""
    return [describe(row) for row in await store.list_all(database)]


async def create_key(
    database: Database, owner: str, scopes: Iterable[str], expires_in: int | None, *, actor: Actor = CLI
) -> dict[str, Any]:
    """A new key for `owner`; the result holds the key (`api_key`), shown exactly once. Each
    scope item may hold several space-separated scopes."""
    check_new(owner, expires_in)
    words = [s for item in scopes for s in item.split()]
    key, record = new_key(owner, words, int(time.time()), expires_in=expires_in)
    row = row_of(record)
    await store.create(database, row)
    actor.audit("apikey_created", key_id=row.key_id, owner=row.owner, scopes=row.scopes, expires_at=row.expires_at)
    return {"api_key": key, **describe(row)}


async def rotate_key(database: Database, key_id: str, overlap: int, *, actor: Actor = CLI) -> dict[str, Any]:
    """A successor of the active key `key_id` (same owner and scopes); the old key keeps working
    `overlap` seconds. The result holds the new key, shown exactly once."""
    check_overlap(overlap)
    inactive = UnknownObject(f"no active API key {key_id!r} (unknown, revoked, expired or already rotated)")
    old = await store.get(database, key_id)
    if old is None:
        raise inactive
    key, record = new_key(old.owner, old.scopes.split(), int(time.time()))
    row = row_of(record)
    if await store.rotate(database, key_id, row, overlap) is None:
        raise inactive
    actor.audit("apikey_rotated", key_id=row.key_id, replaces=key_id, overlap=overlap)
    return {"api_key": key, "replaces": key_id, **describe(row)}


async def revoke_key(database: Database, key_id: str, *, actor: Actor = CLI) -> dict[str, Any]:
    """Stop the key now (APIs see it within their verifier's cache_seconds); a key revoked
    before keeps its first revocation time."""
    if not await store.revoke(database, key_id, int(time.time())):
        raise UnknownObject(f"no API key {key_id!r}")
    actor.audit("apikey_revoked", key_id=key_id)
    return {"key_id": key_id, "revoked": True}
