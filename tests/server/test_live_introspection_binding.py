"""A resource server learns only about tokens for its own audiences, and a client revokes only
its own tokens: through the real CLI and a real `bastion serve` process, both databases.

RFC 7662 §4: an introspecting resource server is bound to its audiences, so `--introspect`
without `--audience` is refused at registration, and a token for another audience (or, for a
row stored before that rule, any token) is `{"active": false}`. RFC 7009 §2.1: the server
verifies that a token was issued to the client revoking it, refresh tokens included.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from bastion.store import Database
from bastion.store.models import clients
from tests._live import LiveServer, keep_session_cookie
from tests.server._people import CALLBACK, Person, authorize, exchange, refresh

pytestmark = [pytest.mark.anyio, pytest.mark.server]

ORDERS = "https://api.example.test/orders"
BILLING = "https://api.example.test/billing"
INACTIVE = {"active": False}
NOT_YOURS = {"error": "unauthorized_client", "error_description": "the token was not issued to this client"}
PASSWORD = "a long and unusual passphrase"


def _auth(client: dict[str, Any]) -> tuple[str, str]:
    return client["client_id"], client["client_secret"]


def _token(server: LiveServer, client: dict[str, Any], resource: str) -> str:
    response = httpx.post(
        server.url + "/token",
        data={"grant_type": "client_credentials", "resource": resource},
        auth=_auth(client),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _introspect(server: LiveServer, caller: dict[str, Any], token: str) -> Any:
    response = httpx.post(server.url + "/introspect", data={"token": token}, auth=_auth(caller), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _unbind(server: LiveServer, client_id: str) -> None:
    """Make the stored row what `--introspect` without `--audience` registered before this rule."""

    async def go() -> None:
        database = Database(server.env["BASTION_DATABASE_URL"], pool_size=1)
        try:
            async with database.engine.begin() as conn:
                await conn.execute(clients.update().where(clients.c.client_id == client_id).values(audiences=""))
        finally:
            await database.dispose()

    asyncio.run(go())


def test_cli_refuses_introspect_without_audience(live_server):
    """`clients create --introspect` without --audience exits 2 with a message naming the fix."""
    result = live_server.cli("clients", "create", "--name", "rs", "--grant", "client_credentials", "--introspect")

    assert result.returncode == 2
    assert result.stderr == (
        "error: --introspect needs --audience: the resource URIs whose tokens this resource server may introspect\n"
    )
    assert result.stdout == ""


def test_introspection_answers_only_for_the_callers_audiences(live_server):
    """A resource server bound to ORDERS sees ORDERS tokens; BILLING tokens are exactly {"active": false}."""
    client = live_server.create_client(
        "--name", "app", "--grant", "client_credentials", "--audience", ORDERS, "--audience", BILLING
    )
    orders_rs = live_server.create_client("--name", "orders", "--grant", "client_credentials", "--introspect",
                                          "--audience", ORDERS)
    for_orders, for_billing = _token(live_server, client, ORDERS), _token(live_server, client, BILLING)

    assert _introspect(live_server, orders_rs, for_orders)["active"] is True
    assert _introspect(live_server, orders_rs, for_billing) == INACTIVE


def test_resource_server_bound_to_no_audience_learns_nothing(live_server):
    """A stored --introspect row without audiences (registered before the rule) learns about no
    token and may not read the revocation list."""
    client = live_server.create_client("--name", "app", "--grant", "client_credentials", "--audience", ORDERS)
    legacy = live_server.create_client(
        "--name", "legacy rs", "--grant", "client_credentials", "--introspect", "--audience", ORDERS
    )
    _unbind(live_server, legacy["client_id"])
    token = _token(live_server, client, ORDERS)

    introspected = _introspect(live_server, legacy, token)
    feed = httpx.get(live_server.url + "/revocations", auth=_auth(legacy), timeout=30)

    assert introspected == INACTIVE
    assert feed.status_code == 400
    assert feed.json() == {"error": "unauthorized_client", "error_description": "this client may not read revocations"}


def _person(server: LiveServer) -> Person:
    args = [sys.executable, "-m", "bastion", "users", "create", "--username", "bob", "--email", "bob@example.com"]
    args += ["--password-stdin", "--json", "--data-dir", str(server.data_dir)]
    result = subprocess.run(
        args, env=server.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return Person(json.loads(result.stdout)["sub"], "bob", PASSWORD)


async def test_client_cannot_revoke_another_clients_refresh_token(live_server):
    """RFC 7009 §2.1: another client (even the audience's resource server) revoking a user's
    refresh token is unauthorized_client, and the token still refreshes."""
    user = _person(live_server)
    spa = live_server.create_client(
        *("--name", "SPA", "--grant", "authorization_code", "--grant", "refresh_token", "--auth-method", "none"),
        *("--redirect-uri", CALLBACK, "--scope", "openid offline_access"),
    )
    rs = live_server.create_client(
        "--name", "rs", "--grant", "client_credentials", "--introspect", "--audience", live_server.url + "/api"
    )
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as browser, httpx.AsyncClient(
        base_url=live_server.url, timeout=30
    ) as http:
        browser.event_hooks["response"] = [keep_session_cookie(browser)]
        outcome = await authorize(browser, spa, user, scope="openid offline_access")
        tokens = (await exchange(http, spa, outcome.params["code"], outcome.verifier)).json()
        by_rs = await http.post("/revoke", data={"token": tokens["refresh_token"]}, auth=_auth(rs))
        by_rs_access = await http.post("/revoke", data={"token": tokens["access_token"]}, auth=_auth(rs))
        still = await refresh(http, spa, tokens["refresh_token"])

    assert by_rs.status_code == 400
    assert by_rs.json() == NOT_YOURS
    assert by_rs_access.status_code == 400
    assert by_rs_access.json() == NOT_YOURS
    assert still.status_code == 200, still.text
