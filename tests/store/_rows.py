"""Records for the store tests, and a migrated database of each kind holding a user and two clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from bastion.store import (
    Database,
    clients,
    codes,
    device_codes,
    models,
    pending_requests,
    refresh_tokens,
    revocations,
    sessions,
    transaction,
    users,
)
from bastion.store.clients import ClientRow
from bastion.store.codes import AuthorizationCodeRow
from bastion.store.device_codes import DeviceCodeRow
from bastion.store.pending_requests import AuthorizationRequestRow
from bastion.store.refresh_tokens import RefreshTokenRow
from bastion.store.sessions import BrowserSessionRow
from bastion.store.users import UserRow

NOW = 1_800_000_000


def user(sub: str, username: str, **fields: Any) -> UserRow:
    values: dict[str, Any] = {
        "email": f"{username}@example.com",
        "email_verified": True,
        "display_name": username.title(),
        "profile": "{}",
        "roles": "",
        "enabled": True,
        "password_hash": "x",
        "totp_secret": None,
        "totp_last_step": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return UserRow(sub=sub, username=username, **{**values, **fields})


def client(client_id: str, **fields: Any) -> ClientRow:
    values: dict[str, Any] = {
        "name": client_id,
        "client_type": "public",
        "auth_method": "none",
        "grant_types": "authorization_code",
        "scopes": "",
        "audiences": "",
        "redirect_uris": "",
        "post_logout_redirect_uris": "",
        "id_token_signed_response_alg": "RS256",
        "pkce_optional_with_nonce": False,
        "require_mfa": False,
        "token_lifetime": None,
        "introspect": False,
        "enabled": True,
        "jwks": None,
        "jwks_uri": None,
        "token_endpoint_audience": False,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return ClientRow(client_id=client_id, **{**values, **fields})


def browser_session(id_hash: str, **fields: Any) -> BrowserSessionRow:
    values: dict[str, Any] = {
        "sid": "sid-" + id_hash,
        "sub": "sub-a",
        "stage": "authenticated",
        "amr": "",
        "auth_time": NOW,
        "csrf_token": "c",
        "created_at": NOW,
        "last_seen_at": NOW,
        "expires_at": NOW + 60,
    }
    return BrowserSessionRow(id_hash=id_hash, **{**values, **fields})


def pending_request(request_id: str, session_hash: str, **fields: Any) -> AuthorizationRequestRow:
    values: dict[str, Any] = {
        "client_id": "c1",
        "redirect_uri": "https://a/cb",
        "scope": "openid",
        "state": None,
        "nonce": None,
        "code_challenge": None,
        "prompt": "",
        "max_age": None,
        "login_hint": None,
        "created_at": NOW,
        "expires_at": NOW + 60,
        "acr_values": None,
        "kind": pending_requests.AUTHORIZATION,
        "user_code": None,
    }
    return AuthorizationRequestRow(id=request_id, session_hash=session_hash, **{**values, **fields})


def code(code_hash: str, **fields: Any) -> AuthorizationCodeRow:
    values: dict[str, Any] = {
        "client_id": "c1",
        "sub": "sub-a",
        "redirect_uri": "https://a/cb",
        "scope": "openid",
        "nonce": None,
        "code_challenge": None,
        "sid": "s",
        "auth_time": NOW,
        "amr": "pwd",
        "acr": "a",
        "created_at": NOW,
        "expires_at": NOW + 60,
        "used_at": None,
        "access_jti": None,
        "access_exp": None,
        "refresh_family": None,
    }
    return AuthorizationCodeRow(code_hash=code_hash, **{**values, **fields})


def refresh_token(token_hash: str, **fields: Any) -> RefreshTokenRow:
    values: dict[str, Any] = {
        "family": "f1",
        "client_id": "c1",
        "sub": "sub-a",
        "scope": "openid offline_access",
        "sid": "s",
        "auth_time": NOW,
        "amr": "pwd",
        "acr": "a",
        "created_at": NOW,
        "expires_at": NOW + 600,
        "family_expires_at": NOW + 6000,
        "rotated_at": None,
        "revoked_at": None,
        "access_jti": None,
        "access_exp": None,
    }
    return RefreshTokenRow(token_hash=token_hash, **{**values, **fields})


def device_code(device_code_hash: str, user_code: str, **fields: Any) -> DeviceCodeRow:
    values: dict[str, Any] = {
        "client_id": "c1",
        "scope": "openid",
        "status": "pending",
        "sub": None,
        "sid": None,
        "auth_time": None,
        "amr": None,
        "acr": None,
        "created_at": NOW,
        "expires_at": NOW + 600,
        "interval": 5,
        "last_poll_at": None,
        "decided_at": None,
        "redeemed_at": None,
    }
    return DeviceCodeRow(device_code_hash=device_code_hash, user_code=user_code, **{**values, **fields})


async def store(database: Database, *rows: Any) -> None:
    """Write records through their owning modules' functions, in one transaction."""
    inserts = {
        UserRow: users.insert,
        ClientRow: clients.insert,
        AuthorizationRequestRow: pending_requests.insert,
        AuthorizationCodeRow: codes.insert,
        RefreshTokenRow: refresh_tokens.insert,
    }
    async with transaction(database) as tx:
        for row in rows:
            await inserts[type(row)](tx, row)


async def database_with(db_url: str, *rows: Any, pool_size: int = 1) -> AsyncIterator[Database]:
    """A migrated database holding user sub-a (alice), clients c1 and c2, then `rows`."""
    db = Database(db_url, pool_size=pool_size)
    await db.upgrade()
    await store(db, user("sub-a", "alice"), client("c1"), client("c2"), *rows)
    yield db
    await db.dispose()


# Rows of every expiring table around `now`: what a sweep at `now` must delete and what it must
# keep (server.sweeper: sessions dead by absolute or idle timeout, codes and device codes an hour
# past expiry, refresh-token families past their absolute lifetime, revocations and
# client-assertion jtis past the largest clock leeway).
SWEPT = {
    "browser_sessions": {"s-expired", "s-idle"},
    "authorization_requests": {"r-expired"},
    "authorization_codes": {"c-old"},
    "device_codes": {"d-old"},
    "refresh_tokens": {"t-dead-1", "t-dead-2"},
    "revoked_tokens": {"j-old"},
    "used_assertions": {"a-old"},
}
KEPT = {
    "browser_sessions": {"s-live"},
    "authorization_requests": {"r-live"},
    "authorization_codes": {"c-recent", "c-live"},
    "device_codes": {"d-recent", "d-live"},
    "refresh_tokens": {"t-idle", "t-live"},
    "revoked_tokens": {"j-leeway", "j-live"},
    "used_assertions": {"a-recent", "a-live"},
}


async def store_expiring(database: Database, now: int, idle: int) -> None:
    """The rows of SWEPT and KEPT (client c1 must exist)."""
    anonymous = {"sub": None, "stage": "anonymous", "auth_time": None}
    await sessions.save(database, browser_session("s-expired", **anonymous, last_seen_at=now, expires_at=now))
    await sessions.save(database, browser_session("s-idle", **anonymous, last_seen_at=now - idle, expires_at=now + 9))
    await sessions.save(database, browser_session("s-live", **anonymous, last_seen_at=now - 60, expires_at=now + idle))
    await store(
        database,
        pending_request("r-expired", "s-live", expires_at=now),
        pending_request("r-live", "s-live", expires_at=now + 600),
        code("c-old", expires_at=now - 3601),
        code("c-recent", expires_at=now - 60, used_at=now - 100),
        code("c-live", expires_at=now + 60),
        refresh_token("t-dead-1", family="f-dead", family_expires_at=now),
        refresh_token("t-dead-2", family="f-dead", family_expires_at=now, revoked_at=now - 5),
        # Past its idle expiry but not its family's absolute one: kept (the sweep goes by family).
        refresh_token("t-idle", family="f-live", expires_at=now - 1, family_expires_at=now + 600),
        refresh_token("t-live", family="f-live", family_expires_at=now + 600),
    )
    old = now - 3600
    for name, user_code, expires_at in (
        ("d-old", "BBBBBBBB", now - 3601),
        ("d-recent", "CCCCCCCC", now - 60),
        ("d-live", "DDDDDDDD", now + 600),
    ):
        row = device_code(name, user_code, expires_at=expires_at)
        assert await device_codes.start(database, row, purge_before=old - 9)
    for jti, exp in (("j-old", now - 301), ("j-leeway", now - 60), ("j-live", now + 600)):
        await revocations.record(database, jti, "c1", exp, old)
    for jti, exp in (("a-old", now - 301), ("a-recent", now - 60), ("a-live", now + 60)):
        assert await revocations.use_assertion(database, "c1", jti, exp, old)


async def keys(database: Database) -> dict[str, set[str]]:
    """Each expiring table's rows by key (the jti for used_assertions)."""
    found: dict[str, set[str]] = {}
    async with database.engine.connect() as conn:
        for table, column in (
            (models.browser_sessions, "id_hash"),
            (models.authorization_requests, "id"),
            (models.authorization_codes, "code_hash"),
            (models.device_codes, "device_code_hash"),
            (models.refresh_tokens, "token_hash"),
            (models.revoked_tokens, "jti"),
            (models.used_assertions, "jti"),
        ):
            found[table.name] = set((await conn.execute(select(table.c[column]))).scalars())
    return found
