"""Revocation with `BASTION_REDIS_URL`: the denylist key scheme resource servers read, both databases.

`bastion:revoked:jti:{jti}` holds the token's exp and expires the largest clock leeway after the
token does (issue 2; issue 12: a validator accepts a token until exp + leeway).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from redis.asyncio import Redis

from bastion.store.revocations import LEEWAY_MARGIN
from tests import _services
from tests.conftest import DEFAULT_AUDIENCE, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

CC = {"grant_type": "client_credentials"}


@pytest.fixture
def settings(db_url, tmp_path):
    """This module's server uses Redis for the denylist."""
    return make_settings(db_url, tmp_path, redis_url=_services.need_redis())


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(_services.need_redis(), decode_responses=True)
    yield client
    await client.aclose()


def _auth(client: dict[str, Any]) -> tuple[str, str]:
    return client["client_id"], client["client_secret"]


async def _token(http: Any, client: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    response = await http.post("/token", data=CC, auth=_auth(client))
    assert response.status_code == 200, response.text
    token = str(response.json()["access_token"])
    return token, jwt.decode(token, options={"verify_signature": False})


async def test_revoked_jti_is_published_in_redis_with_ttl(http, register, redis):
    """Revocation writes bastion:revoked:jti:{jti} = exp, expiring LEEWAY_MARGIN after the token does."""
    client = await register()
    token, claims = await _token(http, client)
    key = f"bastion:revoked:jti:{claims['jti']}"
    try:
        assert await redis.exists(key) == 0
        response = await http.post("/revoke", data={"token": token}, auth=_auth(client))

        assert response.status_code == 200
        assert await redis.get(key) == str(claims["exp"])
        ttl = await redis.ttl(key)
        until_exp = claims["exp"] - int(time.time())
        assert until_exp + LEEWAY_MARGIN - 2 <= ttl <= until_exp + LEEWAY_MARGIN + 1
    finally:
        await redis.delete(key)


async def test_revoked_token_is_inactive_and_listed(http, register, redis):
    """With Redis configured the database still records the revocation: introspection and the list agree."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    token, claims = await _token(http, client)
    key = f"bastion:revoked:jti:{claims['jti']}"
    try:
        await http.post("/revoke", data={"token": token}, auth=_auth(client))
        introspected = await http.post("/introspect", data={"token": token}, auth=_auth(rs))
        listed = await http.get("/revocations", params={"since": "0"}, auth=_auth(rs))
    finally:
        await redis.delete(key)

    assert introspected.json() == {"active": False}
    assert claims["jti"] in [r["jti"] for r in listed.json()["revocations"]]


async def test_denylist_entry_in_redis_is_honoured(http, register, redis):
    """A jti denied in Redis (by another server process) is inactive here too."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    token, claims = await _token(http, client)
    key = f"bastion:revoked:jti:{claims['jti']}"
    try:
        before = await http.post("/introspect", data={"token": token}, auth=_auth(rs))
        await redis.set(key, str(claims["exp"]), ex=60)
        after = await http.post("/introspect", data={"token": token}, auth=_auth(rs))
    finally:
        await redis.delete(key)

    assert before.json()["active"] is True
    assert after.json() == {"active": False}
