"""Against a real `bastion serve`, on SQLite and PostgreSQL: many simultaneous uses of one
single-use thing give exactly one success, and every other answer is the replay's own error,
never a 500 (a code, a refresh token, a device code, a client assertion, a consent form)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._live import LiveServer, keep_session_cookie
from tests.server._device import DEVICE_GRANT, DEVICE_SCOPE, verify
from tests.server._jose import assertion_claims, assertion_form, new_client_key, sign
from tests.server._people import CALLBACK, Person, authorize, exchange, hidden_fields, query_of, refresh

pytestmark = [pytest.mark.anyio, pytest.mark.server]

PASSWORD = "a long and unusual passphrase"
N = 8


def _user(server: LiveServer) -> Person:
    args = [sys.executable, "-m", "bastion", "users", "create", "--username", "bob", "--email", "bob@example.com"]
    args += ["--password-stdin", "--json", "--data-dir", str(server.data_dir)]
    result = subprocess.run(
        args, env=server.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return Person(json.loads(result.stdout)["sub"], "bob", PASSWORD)


def _spa(server: LiveServer) -> dict[str, Any]:
    return server.create_client(
        "--name", "SPA", "--grant", "authorization_code", "--grant", "refresh_token", "--grant", DEVICE_GRANT,
        "--auth-method", "none", "--redirect-uri", CALLBACK, "--scope", "openid profile email offline_access read",
    )


def _outcomes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    """(status, error) of each answer: what the race decided, countable."""
    return Counter(
        (r.status_code, r.json().get("error") if r.status_code != 200 else None) for r in responses
    )


async def _browser(server: LiveServer) -> httpx.AsyncClient:
    browser = httpx.AsyncClient(base_url=server.url, timeout=60)
    browser.event_hooks["response"] = [keep_session_cookie(browser)]
    return browser


async def test_simultaneous_code_exchanges_and_refreshes_give_one_success(live_server: LiveServer) -> None:
    """N simultaneous exchanges of one code, then N refreshes of one token: one 200, N-1 invalid_grant each."""
    server, user, client = live_server, _user(live_server), _spa(live_server)
    browser = await _browser(server)
    async with browser, httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        outcome = await authorize(browser, client, user)
        code = outcome.params["code"]
        codes = await asyncio.gather(*(exchange(http, client, code, outcome.verifier) for _ in range(N)))
        fresh = await authorize(browser, client, None)
        tokens = (await exchange(http, client, fresh.params["code"], fresh.verifier)).json()
        refreshes = await asyncio.gather(*(refresh(http, client, tokens["refresh_token"]) for _ in range(N)))

    assert _outcomes(codes) == {(200, None): 1, (400, "invalid_grant"): N - 1}
    assert _outcomes(refreshes) == {(200, None): 1, (400, "invalid_grant"): N - 1}


async def test_simultaneous_polls_of_an_approved_device_code_give_one_success(live_server: LiveServer) -> None:
    """N simultaneous polls of one approved device code: one 200; the others slow_down or invalid_grant."""
    server, user, client = live_server, _user(live_server), _spa(live_server)
    browser = await _browser(server)
    async with browser, httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        started = (await http.post("/device_authorization", data={"client_id": client["client_id"],
                                                                  "scope": DEVICE_SCOPE})).json()
        approved = await verify(browser, user, started["user_code"])
        assert approved.status_code == 200, approved.text
        data = {"grant_type": DEVICE_GRANT, "device_code": started["device_code"], "client_id": client["client_id"]}
        polls = await asyncio.gather(*(http.post("/token", data=data) for _ in range(N)))

    outcomes = _outcomes(polls)
    assert outcomes[(200, None)] == 1, outcomes
    assert set(outcomes) <= {(200, None), (400, "slow_down"), (400, "invalid_grant")}, outcomes


async def test_simultaneous_uses_of_one_client_assertion_give_one_success(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """N simultaneous token requests with one private_key_jwt assertion: one 200, N-1 invalid_client."""
    key = new_client_key()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(key.jwks))
    client = live_server.create_client(
        "--name", "jwt", "--grant", "client_credentials", "--scope", "read", "--auth-method", "private_key_jwt",
        "--jwks", str(jwks),
    )
    assertion = sign(assertion_claims(client["client_id"], live_server.url), key)
    form = assertion_form(assertion, grant_type="client_credentials", scope="read", client_id=client["client_id"])
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        answers = await asyncio.gather(*(http.post("/token", data=form) for _ in range(N)))

    assert _outcomes(answers) == {(200, None): 1, (401, "invalid_client"): N - 1}


async def test_simultaneous_consent_submissions_issue_one_code(live_server: LiveServer) -> None:
    """N simultaneous approvals of one consent form: no server error, and exactly one code reaches the client."""
    server, user, client = live_server, _user(live_server), _spa(live_server)
    browser = await _browser(server)
    async with browser:
        outcome = await authorize(browser, client, user, consent=None)
        assert 'action="/consent"' in outcome.response.text, outcome.response.text
        form = {**hidden_fields(outcome.response.text), "decision": "approve"}
        answers = await asyncio.gather(*(browser.post("/consent", data=form) for _ in range(N)))

    assert all(r.status_code < 500 for r in answers), [(r.status_code, r.text[:200]) for r in answers]
    codes = [r for r in answers if r.headers.get("location", "").startswith(CALLBACK)
             and "code" in query_of(r.headers["location"])]
    assert len(codes) == 1, [(r.status_code, r.headers.get("location"), r.text[:200]) for r in answers]
