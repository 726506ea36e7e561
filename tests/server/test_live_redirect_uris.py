"""Registered redirect URIs through the real CLI and a real `bastion serve` process, both databases.

Registration takes only what `protocol.rfc7591` accepts (absolute, no fragment, no whitespace,
https or loopback-IP http, reverse-domain private-use schemes; never `javascript:` and the
like), and a row stored before that rule never becomes a redirect (authorization or logout) or a
CORS origin. One server per database serves the module.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bastion.store import Database
from bastion.store.models import clients
from tests._live import start_server
from tests.conftest import make_settings, prepare
from tests.server.test_live_negative import Live, _create_postgres_database, _drop_postgres_database

pytestmark = pytest.mark.server

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
NOT_REGISTERED = "The application sent an invalid request: redirect_uri is not registered for this client."


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live-redirects")
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'bastion.db'}"
    else:
        pg_name = f"bastion_redirects_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
        url = asyncio.run(_create_postgres_database(pg_name))
    try:
        settings = make_settings(url, tmp, client_cache_seconds=0)
        asyncio.run(prepare(settings))
        server = start_server(settings, tmp)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                yield Live(server, settings, http)
        finally:
            server.stop()
    finally:
        if pg_name is not None:
            asyncio.run(_drop_postgres_database(pg_name))


def _cli_create(live: Live, *args: str) -> Any:
    return live.server.cli("clients", "create", "--name", "rp", "--scope", "openid", *args, "--json")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--grant", "authorization_code", "--redirect-uri", "not a url"),
            "--redirect-uri 'not a url': must be printable ASCII without spaces or control characters",
            id="not-a-url",
        ),
        pytest.param(
            ("--grant", "authorization_code", "--redirect-uri", "javascript:alert(1)//"),
            "--redirect-uri 'javascript:alert(1)//': the javascript: scheme is never a redirect target",
            id="javascript",
        ),
        pytest.param(
            ("--grant", "authorization_code", "--redirect-uri", "data:text/html,hi"),
            "--redirect-uri 'data:text/html,hi': the data: scheme is never a redirect target",
            id="data",
        ),
        pytest.param(
            ("--grant", "authorization_code", "--redirect-uri", "http://rp.example/cb"),
            "--redirect-uri 'http://rp.example/cb': must be https; http only on a loopback IP literal, "
            "127.0.0.1 or [::1] (RFC 8252 §7.3)",
            id="http-public-host",
        ),
        pytest.param(
            ("--grant", "authorization_code", "--redirect-uri", "http://localhost:8080/cb"),
            "--redirect-uri 'http://localhost:8080/cb': use the loopback IP literal 127.0.0.1 or [::1], "
            "not localhost (RFC 8252 §8.3)",
            id="localhost",
        ),
        pytest.param(
            ("--grant", "authorization_code", "--redirect-uri", "myapp:/cb"),
            "--redirect-uri 'myapp:/cb': a private-use scheme must be a reverse domain name, "
            "such as com.example.app: (RFC 8252 §7.1, §8.4)",
            id="private-use-without-period",
        ),
        pytest.param(
            ("--grant", "authorization_code"),
            "the authorization_code grant needs at least one redirect URI: add --redirect-uri URI",
            id="code-grant-without-redirect-uri",
        ),
        pytest.param(
            ("--grant", "authorization_code", "--redirect-uri", "https://rp.example/cb",
             "--post-logout-redirect-uri", "javascript:alert(1)"),
            "--post-logout-redirect-uri 'javascript:alert(1)': the javascript: scheme is never a redirect target",
            id="post-logout-javascript",
        ),
    ],
)
def test_cli_refuses_invalid_redirect_uris(live, args: tuple[str, ...], message: str):
    """`clients create` refuses an invalid URI: exit 2, one line naming the option, URI and rule; nothing stored."""
    before = json.loads(live.server.cli("clients", "list", "--json").stdout)

    result = _cli_create(live, *args)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    assert json.loads(live.server.cli("clients", "list", "--json").stdout) == before


def test_cli_stores_valid_redirect_uris_exactly(live):
    """https, loopback-IP http and a reverse-domain private-use URI are stored as given, once each."""
    uris = ("https://rp.example/cb", "http://127.0.0.1/native", "http://[::1]:8080/cb", "com.example.app:/oauth2")
    result = _cli_create(
        live, "--grant", "authorization_code", *(a for uri in (*uris, uris[0]) for a in ("--redirect-uri", uri))
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["redirect_uris"] == list(uris)


def _store(live: Live, client_id: str, **values: str) -> None:
    """Write a row as an older Bastion (or a hand edit) left it, before the registration rule."""

    async def go() -> None:
        database = Database(live.settings.resolved_database_url, pool_size=1)
        try:
            async with database.engine.begin() as conn:
                await conn.execute(clients.update().where(clients.c.client_id == client_id).values(**values))
        finally:
            await database.dispose()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("stored", "requested"),
    [
        pytest.param("javascript:alert(document.domain)//", "javascript:alert(document.domain)//", id="javascript"),
        pytest.param("http://evil.example/cb", "http://evil.example/cb", id="http-public-host"),
        pytest.param("not a url", "not", id="split-at-spaces"),
        pytest.param("data:text/html,x", "data:text/html,x", id="data"),
    ],
)
def test_authorize_never_redirects_to_an_invalid_stored_uri(live, stored: str, requested: str):
    """A stored redirect URI that fails the registration rule is not registered: a 400 page, no Location."""
    client = live.register(grants=("authorization_code",), scope=("openid",), redirect_uris=("https://rp.example/cb",))
    _store(live, client["client_id"], redirect_uris=stored)
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": requested,
        "scope": "openid",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }

    # An unsupported response_type is an error sent *to the redirect URI* once it is accepted.
    response = live.http.get("/authorize", params={**params, "response_type": "token"})

    assert response.status_code == 400
    assert "location" not in response.headers
    assert NOT_REGISTERED in response.text


def test_logout_never_redirects_to_an_invalid_stored_post_logout_uri(live):
    """A stored post_logout_redirect_uri that fails the rule is not registered: logout shows a page."""
    client = live.register(
        grants=("authorization_code",),
        redirect_uris=("https://rp.example/cb",),
        post_logout_redirect_uris=("https://rp.example/bye",),
    )
    _store(live, client["client_id"], post_logout_redirect_uris="javascript:alert(1)//")

    response = live.http.get(
        "/logout", params={"client_id": client["client_id"], "post_logout_redirect_uri": "javascript:alert(1)//"}
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The post_logout_redirect_uri is not registered for this client." in response.text


def test_invalid_stored_public_redirect_uri_is_no_cors_origin(live):
    """A public client's stored http://public-host redirect URI does not make that host a CORS origin."""
    client = live.register(
        grants=("authorization_code",), auth_method="none", redirect_uris=("https://spa.example/cb",)
    )
    _store(live, client["client_id"], redirect_uris="http://evil.example/cb https://spa.example/cb")
    preflight = {"access-control-request-method": "POST"}

    evil = live.http.options("/token", headers={"origin": "http://evil.example", **preflight})
    spa = live.http.options("/token", headers={"origin": "https://spa.example", **preflight})

    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers
    assert spa.status_code == 204
    assert spa.headers["access-control-allow-origin"] == "https://spa.example"
