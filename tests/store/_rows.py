"""Rows for the store tests, and a migrated database of each kind holding a user and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.store import Database
from bastion.store.models import AuthorizationRequestRow, BrowserSessionRow, ClientRow, UserRow

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


def client(client_id: str) -> ClientRow:
    return ClientRow(
        client_id=client_id,
        name=client_id,
        client_type="public",
        auth_method="none",
        grant_types="authorization_code",
        created_at=NOW,
        updated_at=NOW,
    )


def browser_session(id_hash: str, **fields: Any) -> BrowserSessionRow:
    values: dict[str, Any] = {
        "sid": "sid-" + id_hash,
        "sub": "sub-a",
        "stage": "authenticated",
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
        "prompt": "",
        "created_at": NOW,
        "expires_at": NOW + 60,
    }
    return AuthorizationRequestRow(id=request_id, session_hash=session_hash, **{**values, **fields})


async def database_with(db_url: str, *rows: Any) -> AsyncIterator[Database]:
    """A migrated database holding user sub-a (alice), clients c1 and c2, then `rows`."""
    db = Database(db_url, pool_size=1)
    await db.upgrade()
    async with db.sessions() as session, session.begin():
        session.add_all([user("sub-a", "alice"), client("c1"), client("c2")])
        await session.flush()
        session.add_all(rows)
    yield db
    await db.dispose()
