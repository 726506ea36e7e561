"""The negative matrix through a real `bastion serve` process (the third level of realism), both databases.

One server per database serves the whole module: its database is its own (a fresh SQLite file,
or a PostgreSQL database created for it), so nothing else truncates it while it runs. The
server uses the default rate limits; the module stays under them (fewer than 20 failed
authentications from 127.0.0.1 per minute). Disabling a client and rotating a secret while
servers run is covered across two processes in test_cli_live.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bastion.config import Settings
from bastion.server import admin
from bastion.server.clients import SecretHasher
from bastion.store import Database
from tests import _services
from tests._live import LiveServer, start_server
from tests.conftest import TEST_KEK, TEST_PEPPER, make_settings, prepare
from tests.server._faults import table_gone
from tests.server._jose import assertion_claims, assertion_form, new_client_key, sign

pytestmark = pytest.mark.server

FORM = "application/x-www-form-urlencoded"
FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}
PASSWORD_REFUSAL = (
    "the resource owner password credentials grant is not supported (RFC 9700 §2.4); "
    "use authorization_code with PKCE for users, or client_credentials for machines"
)


async def _create_postgres_database(name: str) -> str:
    import asyncpg

    base = _services.need_postgres()
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name


async def _drop_postgres_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_services.need_postgres())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Live:
    server: LiveServer
    settings: Settings
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def register(self, **fields: Any) -> dict[str, Any]:
        """Register a client in the server's database with the admin code the CLI uses."""
        fields.setdefault("name", "live test client")
        fields.setdefault("grants", ("client_credentials",))
        fields.setdefault("scope", ("read", "write"))

        async def go() -> dict[str, Any]:
            database = Database(self.settings.resolved_database_url, pool_size=1)
            try:
                return await admin.create_client(
                    database, SecretHasher(TEST_PEPPER.encode()), admin.NewClient(**fields)
                )
            finally:
                await database.dispose()

        return asyncio.run(go())

    def log(self) -> str:
        return self.server.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'bastion.db'}"
    else:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        pg_name = f"bastion_live_{worker}_{os.getpid()}"
        url = asyncio.run(_create_postgres_database(pg_name))
    try:
        settings = make_settings(url, tmp, client_cache_seconds=1)
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


def _basic(client: dict[str, Any]) -> tuple[str, str]:
    return client["client_id"], client["client_secret"]


def _form(live: Live, body: bytes, auth: Any = None, content_type: str | None = FORM) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    return live.http.post("/token", content=body, headers=headers, auth=auth)


def _token(live: Live, client: dict[str, Any]) -> str:
    response = live.http.post("/token", data={"grant_type": "client_credentials"}, auth=_basic(client))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


Case = Callable[[Live, dict[str, Any]], httpx.Response]

TOKEN_CASES: list[Any] = [
    pytest.param(
        lambda live, c: _form(live, b'{"grant_type":"client_credentials"}', _basic(c), "application/json"),
        400,
        _error("invalid_request", f"the request body must be {FORM}"),
        id="json-body",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=client_credentials", _basic(c), None),
        400,
        _error("invalid_request", f"the request body must be {FORM}"),
        id="no-content-type",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=client_credentials&scope=read&scope=write", _basic(c)),
        400,
        _error("invalid_request", "parameter scope is repeated"),
        id="repeated-parameter",
    ),
    pytest.param(
        lambda live, c: _form(live, b"scope=read", _basic(c)),
        400,
        _error("invalid_request", "parameter grant_type is required"),
        id="missing-grant-type",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=password&username=u&password=p", _basic(c)),
        400,
        _error("unsupported_grant_type", PASSWORD_REFUSAL),
        id="password-grant",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=urn%3Aexample%3Amagic", _basic(c)),
        400,
        _error("unsupported_grant_type", "grant_type urn:example:magic is not supported"),
        id="unknown-grant",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=client_credentials&scope=admin", _basic(c)),
        400,
        _error("invalid_scope", "scope not allowed for this client: admin"),
        id="invalid-scope",
    ),
    pytest.param(
        lambda live, c: _form(
            live,
            b"grant_type=client_credentials&resource=https%3A%2F%2Fa.test%2F&resource=https%3A%2F%2Fb.test%2F",
            _basic(c),
        ),
        400,
        _error("invalid_target", "request a single resource per token"),
        id="several-resources",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=client_credentials&resource=https%3A%2F%2Fa.test%2F%23x", _basic(c)),
        400,
        _error("invalid_target", "resource must be an absolute URI without a fragment (RFC 8707 §2)"),
        id="resource-with-fragment",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=client_credentials", (c["client_id"], "wrong-secret")),
        401,
        FAILED,
        id="wrong-secret",
    ),
    pytest.param(
        lambda live, c: _form(live, b"grant_type=client_credentials", ("no-such-client", c["client_secret"])),
        401,
        FAILED,
        id="unknown-client",
    ),
    pytest.param(
        lambda live, c: live.http.post(
            "/token",
            data={"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]},
            auth=_basic(c),
        ),
        400,
        _error("invalid_request", "use exactly one client authentication method (RFC 6749 §2.3)"),
        id="two-methods",
    ),
    pytest.param(
        lambda live, c: live.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        ),
        401,
        _error("invalid_client", "malformed Basic authorization header"),
        id="basic-without-colon",
    ),
]


@pytest.mark.parametrize(("send", "status", "expected"), TOKEN_CASES)
def test_token_errors_over_the_wire(live, send: Case, status, expected):
    """The token endpoint's refusals are the same through a real process: exact status, body and no-store."""
    client = live.register()
    response = send(live, client)

    assert response.status_code == status
    assert response.json() == expected
    assert response.headers["cache-control"] == "no-store"
    assert ("www-authenticate" in response.headers) == (status == 401)


def test_success_over_the_wire(live):
    """The baseline: a registered client gets a token from the running server at once."""
    client = live.register()
    response = live.http.post("/token", data={"grant_type": "client_credentials"}, auth=_basic(client))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


def test_private_key_jwt_refusals_over_the_wire(live):
    """aud = token endpoint is refused without the compat flag, and a replayed assertion is refused."""
    key = new_client_key()
    client = live.register(auth_method="private_key_jwt", jwks=key.jwks)
    cid = client["client_id"]

    endpoint_aud = sign(assertion_claims(cid, live.url + "/token"), key)
    refused = live.http.post("/token", data={"grant_type": "client_credentials", **assertion_form(endpoint_aud)})
    assertion = sign(assertion_claims(cid, live.url), key)
    first = live.http.post("/token", data={"grant_type": "client_credentials", **assertion_form(assertion)})
    replay = live.http.post("/token", data={"grant_type": "client_credentials", **assertion_form(assertion)})

    assert refused.status_code == 401
    assert refused.json() == FAILED
    assert first.status_code == 200, first.text
    assert replay.status_code == 401
    assert replay.json() == FAILED


def test_introspection_and_revocation_refusals_over_the_wire(live):
    """A client without --introspect may not introspect; a client may not revoke another's token."""
    owner, other = live.register(), live.register()
    rs = live.register(introspect=True, audiences=(live.url + "/api",), grants=())
    token = _token(live, owner)

    introspect = live.http.post("/introspect", data={"token": token}, auth=_basic(other))
    revoke = live.http.post("/revoke", data={"token": token}, auth=_basic(other))
    still_active = live.http.post("/introspect", data={"token": token}, auth=_basic(rs))
    garbage = live.http.post("/revoke", data={"token": "garbage"}, auth=_basic(other))

    assert introspect.status_code == 400
    assert introspect.json() == _error("unauthorized_client", "this client may not use introspection")
    assert revoke.status_code == 400
    assert revoke.json() == _error("unauthorized_client", "the token was not issued to this client")
    assert still_active.json()["active"] is True
    assert garbage.status_code == 200


def test_revoked_token_is_inactive_over_the_wire(live):
    """Revocation by the owner makes introspection answer exactly {"active": false}."""
    owner = live.register()
    rs = live.register(introspect=True, audiences=(live.url + "/api",), grants=())
    token = _token(live, owner)

    revoked = live.http.post("/revoke", data={"token": token}, auth=_basic(owner))
    introspected = live.http.post("/introspect", data={"token": token}, auth=_basic(rs))

    assert revoked.status_code == 200
    assert introspected.json() == {"active": False}


def test_database_fault_is_bare_server_error_with_detail_in_log(live):
    """A real fault (the clients table gone) is a bare server_error; the traceback is in the log with the request id."""
    with_table_gone = table_gone(live.settings.resolved_database_url, "clients")

    async def during() -> httpx.Response:
        async with with_table_gone, httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            return await http.post("/token", data={"grant_type": "client_credentials"}, auth=("never-seen-client", "x"))

    response = asyncio.run(during())
    request_id = response.headers["x-request-id"]
    log = live.log()

    assert response.status_code == 500
    assert response.json() == {"error": "server_error"}
    assert "Traceback" not in response.text
    lines = [line for line in log.splitlines() if request_id in line and "unhandled_error" in line]
    assert len(lines) == 1
    assert "Traceback" in lines[0]


def test_secrets_never_reach_the_log(live):
    """After issuing, failing and revoking, the log holds jtis but no secret, token, or server key."""
    client = live.register()
    wrong = "definitely-wrong-secret-" + "x" * 20
    token = _token(live, client)
    live.http.post("/token", data={"grant_type": "client_credentials"}, auth=(client["client_id"], wrong))
    live.http.post("/revoke", data={"token": token}, auth=_basic(client))
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    log = live.log()

    assert jti in log
    for secret in (client["client_secret"], wrong, token, token.split(".")[2], basic, TEST_KEK, TEST_PEPPER):
        assert secret not in log
    for path in Path(live.server.data_dir).glob("**/*.log"):
        assert client["client_secret"] not in path.read_text(errors="replace")


def _events(live: Live, request_id: str) -> list[dict[str, Any]]:
    found = []
    for line in live.log().splitlines():
        if line.startswith("{") and request_id in line:
            event = json.loads(line)
            if event.get("request_id") == request_id:
                found.append(event)
    return found


def test_security_events_are_structured_json(live):
    """Authentication, issuance, failure and revocation are audited as JSON with request id, client id and source."""
    client = live.register()
    cid = client["client_id"]
    issued = live.http.post("/token", data={"grant_type": "client_credentials"}, auth=_basic(client))
    token = issued.json()["access_token"]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    failed = live.http.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, "wrong"))
    revoked = live.http.post("/revoke", data={"token": token}, auth=_basic(client))

    ok_events = {e["event"]: e for e in _events(live, issued.headers["x-request-id"])}
    fail_events = {e["event"]: e for e in _events(live, failed.headers["x-request-id"])}
    revoke_events = {e["event"]: e for e in _events(live, revoked.headers["x-request-id"])}

    assert {"client_authenticated", "token_issued"} <= set(ok_events)
    assert ok_events["token_issued"]["jti"] == jti
    assert fail_events["client_authentication_failed"]["reason"] == "wrong client secret"
    assert revoke_events["token_revoked"]["jti"] == jti
    for event in (*ok_events.values(), *fail_events.values(), *revoke_events.values()):
        if event.get("audit"):
            assert event["client_id"] == cid
            assert event["source"] == "127.0.0.1"
