"""The server's security events land in its database as one hash-chained trail (issue 14, item 9),
through real `bastion serve` processes on SQLite and PostgreSQL:

- a failed sign-in, a failed client authentication, a token issued and a revocation are entries
  of the trail, and `bastion audit verify --db` accepts it;
- an edited row is reported with its seq and exit 1;
- two workers (`--workers 2`) write one valid chain holding every event;
- polls of the revocation feed leave nothing in the trail (and no line on stderr).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests import _services
from tests._live import LiveServer, keep_session_cookie, start_server
from tests.conftest import make_settings, prepare
from tests.server._people import CALLBACK, Person, authorize

pytestmark = [pytest.mark.anyio, pytest.mark.server]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _plain(url: str) -> str:
    """The URL an operator gives the CLI (`postgresql://`, `sqlite:///`)."""
    return url.replace("+asyncpg", "").replace("+aiosqlite", "")


def _verify(server: LiveServer, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", "audit", "verify", "--db", _plain(url), "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def _entries(url: str) -> list[dict[str, Any]]:
    from bastion.store import Database
    from bastion.store import audit as audit_store

    database = Database(url, pool_size=1)
    try:
        return [json.loads(row.entry) for row in await audit_store.page(database, 0, 100_000)]
    finally:
        await database.dispose()


async def _tamper(url: str, seq: int, statement: str, **params: str) -> None:
    from bastion.store import Database

    database = Database(url, pool_size=1)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(sa.text(statement), {"seq": seq, **params})
    finally:
        await database.dispose()


async def _serve(db_url: str, tmp_path: Path, *args: str, **overrides: Any) -> tuple[LiveServer, str]:
    settings = make_settings(db_url, tmp_path, **overrides)
    await prepare(settings)
    return start_server(settings, tmp_path, args=args), settings.resolved_database_url


def _service(server: LiveServer) -> dict[str, Any]:
    return server.create_client(
        "--name",
        "svc",
        "--grant",
        "client_credentials",
        "--scope",
        "read",
        "--introspect",
        "--audience",
        "https://api.example",
    )


async def test_events_land_in_the_trail_and_it_verifies(db_url, tmp_path):
    """A failed sign-in, a failed client authentication, a token and its revocation are chained
    rows (written while serving, not only at shutdown); the CLI verifies the chain, and an edited
    entry or an edited column is reported at its seq with exit 1."""
    server, url = await _serve(db_url, tmp_path)
    try:
        from tests.server.test_browser_flow import create_user

        person = create_user(server, "dana")
        spa = server.create_client(
            "--name", "spa", "--grant", "authorization_code", "--auth-method", "none",
            "--redirect-uri", CALLBACK, "--scope", "openid",
        )  # fmt: skip
        service = _service(server)
        async with httpx.AsyncClient(base_url=server.url) as browser:
            browser.event_hooks["response"] = [keep_session_cookie(browser)]
            wrong = Person(person["sub"], "dana", "not the password")
            signed_in = await authorize(browser, spa, wrong, scope="openid")
        assert 'action="/login"' in signed_in.response.text  # refused: the page again
        async with httpx.AsyncClient(base_url=server.url) as http:
            auth = (service["client_id"], service["client_secret"])
            grant = {"grant_type": "client_credentials"}
            token = (await http.post("/token", data=grant, auth=auth)).json()["access_token"]
            refused = await http.post("/token", data=grant, auth=(service["client_id"], "x"))
            revoked = await http.post("/revoke", data={"token": token}, auth=auth)
        assert (refused.status_code, revoked.status_code) == (401, 200)
        for _ in range(100):  # written by the background task within a fraction of a second
            entries = await _entries(url)
            if "token_revoked" in {e["action"] for e in entries}:
                break
            await asyncio.sleep(0.1)
    finally:
        server.stop()

    actions = {e["action"]: e for e in entries}
    assert {"login_failed", "client_authentication_failed", "token_issued", "token_revoked"} <= set(actions)
    assert "client_authenticated" not in actions
    assert actions["login_failed"]["outcome"] == "failure"
    assert actions["login_failed"]["sub"] == person["sub"]
    assert actions["client_authentication_failed"]["actor"] == f"client:{service['client_id']}"
    assert actions["token_issued"]["outcome"] == "success"
    assert actions["token_revoked"]["object"] == actions["token_issued"]["object"]
    assert actions["token_revoked"]["request_id"] == revoked.headers["x-request-id"]
    assert actions["token_revoked"]["issuer"] == server.url

    intact = _verify(server, url)
    assert intact.returncode == 0, intact.stderr
    report = json.loads(intact.stdout)
    assert report["ok"] is True
    assert report["count"] == len(await _entries(url))

    seq = actions["token_issued"]["seq"]
    edit = "UPDATE audit_log SET entry = replace(entry, :old, :new) WHERE seq = :seq"
    await _tamper(url, seq, edit, old='"issuer":"http:', new='"issuer":"https:')
    edited = _verify(server, url)
    assert edited.returncode == 1
    assert json.loads(edited.stdout)["error"] == f"entry {seq} was modified (hash mismatch)"
    assert json.loads(edited.stdout)["seq"] == seq

    await _tamper(url, seq, edit, old='"issuer":"https:', new='"issuer":"http:')
    await _tamper(url, seq, "UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = :seq")
    column = _verify(server, url)
    assert column.returncode == 1
    assert json.loads(column.stdout)["error"] == f"row seq {seq}: its `actor` column differs from its entry"


async def test_revocation_feed_polls_stay_out_of_the_trail(db_url, tmp_path):
    """A hundred polls of `/revocations` add no entry and no audit line; a refused poll still does."""
    server, url = await _serve(db_url, tmp_path)
    try:
        service = _service(server)
        auth = (service["client_id"], service["client_secret"])
        async with httpx.AsyncClient(base_url=server.url) as http:
            for _ in range(100):
                assert (await http.get("/revocations", auth=auth)).status_code == 200
            refused = await http.get("/revocations", auth=(service["client_id"], "wrong"))
    finally:
        server.stop()  # a clean shutdown writes what is queued

    entries = await _entries(url)
    assert [(e["action"], e["request_id"]) for e in entries] == [
        ("client_authentication_failed", refused.headers["x-request-id"])
    ]
    audit_lines = [line for line in server.log.read_text().splitlines() if '"audit":true' in line]
    assert len(audit_lines) == 1


@pytest.mark.redis
async def test_two_workers_keep_one_chain(db_url, tmp_path):
    """With `--workers 2`, concurrent grants answered by both processes make one valid chain
    holding every token issued."""
    redis_url = _services.need_redis()
    server, url = await _serve(db_url, tmp_path, "--workers", "2", redis_url=redis_url)
    try:
        service = _service(server)
        auth = httpx.BasicAuth(service["client_id"], service["client_secret"])
        async with httpx.AsyncClient(base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            answers = await asyncio.gather(
                *(http.post("/token", data={"grant_type": "client_credentials"}, auth=auth) for _ in range(60))
            )
    finally:
        server.stop()

    assert {a.status_code for a in answers} == {200}
    entries = await _entries(url)
    issued = [e for e in entries if e["action"] == "token_issued"]
    assert len(issued) == 60
    assert {e["request_id"] for e in issued} == {a.headers["x-request-id"] for a in answers}
    result = _verify(server, url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["count"] == len(entries)
