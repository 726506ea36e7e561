"""Against a real `bastion serve`: two simultaneous uses of one code or one refresh token yield
exactly one success, on SQLite and PostgreSQL (parallel requests on separate connections)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from tests._live import keep_session_cookie
from tests.server._people import CALLBACK, Person, authorize, exchange, refresh

pytestmark = [pytest.mark.anyio, pytest.mark.server]

PASSWORD = "a long and unusual passphrase"
ROUNDS = 4


@pytest.fixture
def people_server(live_server):
    args = [sys.executable, "-m", "bastion", "users", "create", "--username", "bob", "--email", "bob@example.com"]
    args += ["--password-stdin", "--json", "--data-dir", str(live_server.data_dir)]
    result = subprocess.run(
        args, env=live_server.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    user = json.loads(result.stdout)
    client = live_server.create_client(
        "--name",
        "SPA",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--auth-method",
        "none",
        "--redirect-uri",
        CALLBACK,
        "--scope",
        "openid profile email offline_access",
    )
    return live_server, Person(user["sub"], "bob", PASSWORD), client


async def test_parallel_code_and_refresh_uses_give_one_success(people_server):
    """For each code and each refresh token, two parallel uses give exactly one 200 and one invalid_grant."""
    server, user, client = people_server
    async with httpx.AsyncClient(base_url=server.url) as browser:
        browser.event_hooks["response"] = [keep_session_cookie(browser)]
        async with httpx.AsyncClient(base_url=server.url) as a, httpx.AsyncClient(base_url=server.url) as b:
            code_results, refresh_results = [], []
            for round_ in range(ROUNDS):
                outcome = await authorize(browser, client, user if round_ == 0 else None)
                assert "code" in outcome.params, (
                    outcome.response.status_code,
                    outcome.location,
                    outcome.response.text[:800],
                )
                code = outcome.params["code"]
                pair = await asyncio.gather(
                    exchange(a, client, code, outcome.verifier), exchange(b, client, code, outcome.verifier)
                )
                code_results.append(sorted(r.status_code for r in pair))
                winner = next(r for r in pair if r.status_code == 200).json()
                loser = next(r for r in pair if r.status_code != 200).json()
                assert loser["error"] == "invalid_grant"
                # Fresh tokens for the refresh race (the code race revoked the winner's family).
                outcome = await authorize(browser, client, None)
                tokens = (await exchange(a, client, outcome.params["code"], outcome.verifier)).json()
                pair = await asyncio.gather(
                    refresh(a, client, tokens["refresh_token"]), refresh(b, client, tokens["refresh_token"])
                )
                refresh_results.append(sorted(r.status_code for r in pair))
                assert winner["token_type"] == "Bearer"

    assert code_results == [[200, 400]] * ROUNDS
    assert refresh_results == [[200, 400]] * ROUNDS
