"""A real `bastion serve` with the people and tokens the admin API tests need (issue 14 item 8):
an administrator signed in with a second factor, a member without the admin role, and a user
promoted to admin after a password-only sign-in, their tokens bought by the code flow (httpx
with TOTP) and narrowed by refresh."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests._live import LiveServer, keep_session_cookie
from tests.server._people import CALLBACK, PASSWORD, Person, exchange, refresh, tokens_for
from tests.server.test_browser_flow import create_user

ADMIN_SCOPE = "openid bastion:admin roles offline_access"


@dataclass
class AdminWorld:
    server: LiveServer
    http: httpx.AsyncClient
    console: dict[str, Any]
    tokens: dict[str, str]  # full, no_scope, no_role, no_mfa
    root: dict[str, Any]
    member_refresh_token: str  # bob's, of the grant the admin may revoke

    def auth(self, kind: str = "full") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[kind]}"}


async def _sign_in(server: LiveServer, client: dict[str, Any], person: Person) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as browser, httpx.AsyncClient(base_url=server.url) as http:
        browser.event_hooks["response"] = [keep_session_cookie(browser)]
        return await tokens_for(browser, http, client, person, scope=ADMIN_SCOPE)


async def _narrowed(http: httpx.AsyncClient, client: dict[str, Any], grant: dict[str, Any], scope: str) -> str:
    response = await refresh(http, client, grant["refresh_token"], scope=scope)
    assert response.status_code == 200, response.text
    grant["refresh_token"] = response.json()["refresh_token"]
    return str(response.json()["access_token"])


@pytest.fixture
async def admin_world(live_server: LiveServer) -> AsyncIterator[AdminWorld]:
    root = create_user(live_server, "root", "admin")
    create_user(live_server, "bob")
    create_user(live_server, "mallory")
    console = live_server.create_client(
        "--name", "Admin console", "--grant", "authorization_code", "--grant", "refresh_token",
        "--auth-method", "none", "--redirect-uri", CALLBACK, "--scope", ADMIN_SCOPE,
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        full = await _sign_in(live_server, console, Person(root["sub"], "root", PASSWORD))
        member = await _sign_in(live_server, console, Person("", "bob", PASSWORD))
        weak = await _sign_in(live_server, console, Person("", "mallory", PASSWORD))
        tokens = {
            "full": full["access_token"],
            "no_scope": await _narrowed(http, console, full, "openid roles offline_access"),
            "no_role": member["access_token"],
        }
        world = AdminWorld(live_server, http, console, tokens, root, member["refresh_token"])
        # Promoted after a password-only sign-in: the refreshed token says admin, without MFA.
        promoted = await http.patch("/admin/users/mallory", json={"roles": ["admin"]}, headers=world.auth())
        assert promoted.status_code == 200, promoted.text
        tokens["no_mfa"] = await _narrowed(http, console, weak, ADMIN_SCOPE)
        yield world


__all__ = ["ADMIN_SCOPE", "AdminWorld", "admin_world", "exchange"]
