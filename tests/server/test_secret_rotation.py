"""Client secret rotation (issue 2): the old secret stops at once, or when the overlap ends.

In-process on both databases, with the client cache at 0 s so the database is the only clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import pytest

from bastion.server import admin
from bastion.store.clients import ClientSecretRow
from bastion.store.models import client_secrets
from tests.conftest import TEST_PEPPER

pytestmark = pytest.mark.anyio

CC = {"grant_type": "client_credentials"}
FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}
OVERLAP = 4


async def _status(http: Any, client_id: str, secret: str) -> int:
    response = await http.post("/token", data=CC, auth=(client_id, secret))
    return int(response.status_code)


async def test_rotation_without_overlap_stops_old_secret_at_once(http, register, ctx):
    """With no overlap (the default) the old secret is refused on the very next request; the new one works."""
    client = await register()
    client_id, old = client["client_id"], client["client_secret"]
    assert await _status(http, client_id, old) == 200

    rotated = await admin.rotate_secret(ctx.database, ctx.hasher, client_id, 0)
    refused = await http.post("/token", data=CC, auth=(client_id, old))

    assert refused.status_code == 401
    assert refused.json() == FAILED
    assert await _status(http, client_id, rotated["client_secret"]) == 200
    assert rotated["client_secret"] != old


async def test_rotation_with_overlap_keeps_old_secret_until_overlap_ends(http, register, ctx):
    """With a 4 s overlap both secrets work, then the old one stops while the new one keeps working."""
    client = await register()
    client_id, old = client["client_id"], client["client_secret"]

    before = int(time.time())
    rotated = await admin.rotate_secret(ctx.database, ctx.hasher, client_id, OVERLAP)
    after = int(time.time())
    new = rotated["client_secret"]
    # The overlap ends between OVERLAP-1 and OVERLAP seconds from now: long enough for two requests.
    assert await _status(http, client_id, old) == 200
    assert await _status(http, client_id, new) == 200
    assert before + OVERLAP <= rotated["previous_secret_valid_until"] <= after + OVERLAP

    deadline = time.monotonic() + 20
    while await _status(http, client_id, old) == 200:
        assert time.monotonic() < deadline, "the old secret outlived its overlap"
        await asyncio.sleep(0.2)

    assert time.time() >= rotated["previous_secret_valid_until"]
    assert await _status(http, client_id, new) == 200


async def test_second_rotation_ends_every_earlier_secret(http, register, ctx):
    """Rotating twice without overlap leaves only the newest secret valid."""
    client = await register()
    client_id, first = client["client_id"], client["client_secret"]
    second = (await admin.rotate_secret(ctx.database, ctx.hasher, client_id, 60))["client_secret"]
    third = (await admin.rotate_secret(ctx.database, ctx.hasher, client_id, 0))["client_secret"]

    assert await _status(http, client_id, first) == 401
    assert await _status(http, client_id, second) == 401
    assert await _status(http, client_id, third) == 200


async def test_rotation_works_for_client_secret_post(http, register, ctx):
    """Rotation applies the same way to a client that sends its secret in the body."""
    client = await register(auth_method="client_secret_post")
    client_id, old = client["client_id"], client["client_secret"]
    new = (await admin.rotate_secret(ctx.database, ctx.hasher, client_id, 0))["client_secret"]

    refused = await http.post("/token", data={**CC, "client_id": client_id, "client_secret": old})
    accepted = await http.post("/token", data={**CC, "client_id": client_id, "client_secret": new})

    assert refused.status_code == 401
    assert refused.json() == FAILED
    assert accepted.status_code == 200, accepted.text


async def test_rotation_refused_for_client_without_secret(register, ctx):
    """A private_key_jwt or public client has no secret to rotate."""
    client = await register(auth_method="none", grants=("authorization_code",), redirect_uris=("https://rp.example/cb",))

    with pytest.raises(admin.AdminError, match="uses none, which has no secret"):
        await admin.rotate_secret(ctx.database, ctx.hasher, client["client_id"], 0)


async def test_secret_is_stored_only_as_a_keyed_hash(register, ctx):
    """The database holds HMAC-SHA-256(pepper, secret), never the secret; another pepper gives another hash."""
    client = await register()
    secret = client["client_secret"]
    async with ctx.database.engine.connect() as conn:
        stored = await conn.execute(client_secrets.select().where(client_secrets.c.client_id == client["client_id"]))
        rows = [ClientSecretRow(*row) for row in stored]

    assert len(rows) == 1
    assert rows[0].secret_hash == hmac.new(TEST_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()
    assert secret not in repr(rows[0])
    assert rows[0].secret_hash != hashlib.sha256(secret.encode()).hexdigest()
