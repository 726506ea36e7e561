"""Records for the store tests, and a migrated database of each kind holding a user and two clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.store import Database, clients, codes, pending_requests, refresh_tokens, transaction, users
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
