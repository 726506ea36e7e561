"""docs/guard.md runs: its python blocks are written to a directory and its two apps are served
by uvicorn, against a real `bastion serve` (SQLite and PostgreSQL) and against another issuer,
then called over real HTTP (issue 14, items 1-3)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.guard import NotFound
from tests._live import LiveServer, free_port, keep_session_cookie
from tests.guard._issuer import AUDIENCE, REVOCATION_CLIENT, running_issuer
from tests.interop._peers import audience
from tests.server._people import CALLBACK, Person, authorize, exchange

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guard.md"
BLOCK = re.compile(r"<!-- test: (?P<name>[\w.]+) -->\n```python\n(?P<code>.*?)```\n", re.S)
PASSWORD = "a long and unusual passphrase"
SHAPES = {"fastapi": "notes_fastapi", "starlette": "notes_starlette"}
# The guide polls revocations every second; a revoked token is refused within that, plus the
# time a loaded 2-core machine takes to answer (a bound, not a measured duration).
REVOKED_WITHIN = 1.0 + 10.0

NO_ROLES = {
    "error": "forbidden",
    "error_description": "requires role admin; the token carries no roles claim: request the `roles` scope",
}
INVALID = {"error": "invalid_token", "error_description": "The access token is invalid, expired or revoked."}
READ_ONLY = "owner is set by the server and cannot be assigned"


def guide_files() -> dict[str, str]:
    """The guide's tested blocks, by file name."""
    return {m["name"]: m["code"] for m in BLOCK.finditer(GUIDE.read_text())}


def test_every_python_block_of_the_guide_is_tested() -> None:
    """No python block in docs/guard.md escapes the test: each one is marked with its file name."""
    text = GUIDE.read_text()

    assert text.count("```python") == len(guide_files()) == 4
    assert set(guide_files()) == {"notes_guard.py", "notes_fastapi.py", "notes_starlette.py", "make_key.py"}


@dataclass
class Tokens:
    """The callers of one run: alice (a member, no roles claim), her read-only token, carol (admin)."""

    alice: str
    alice_read_only: str
    carol: str


@dataclass
class GuideApi:
    url: str
    directory: Path
    env: dict[str, str]
    server: LiveServer | None = None

    def make_key(self) -> str:
        if self.server is not None:  # the guide's section 5: the operator's command at Bastion
            made = cli(self.server, "apikeys", "create", "--owner", "nightly-report", "--scope", "notes:read")
            return str(made["api_key"])
        result = subprocess.run(
            [sys.executable, "make_key.py"], cwd=self.directory, env=self.env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


@contextmanager
def serving(shape: str, tmp: Path, server: LiveServer | None = None, **settings: str) -> Iterator[GuideApi]:
    """The guide's files written to a directory, and one of its apps served by uvicorn."""
    directory = tmp / f"guide-{shape}"
    (directory / "data").mkdir(parents=True)
    for name, code in guide_files().items():
        (directory / name).write_text(code)
    env = os.environ | {"NOTES_DATA_DIR": str(directory / "data"), "PYTHONPATH": str(directory), **settings}
    port = free_port()
    log = directory / "uvicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"{SHAPES[shape]}:app", "--port", str(port), "--no-access-log"],
            cwd=directory, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the guide's {shape} app exited: {log.read_text()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the guide's {shape} app did not start: {log.read_text()}")
            time.sleep(0.1)
        yield GuideApi(url, directory, env, server)
    finally:
        process.terminate()
        process.wait(10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def exercise(api: GuideApi, tokens: Tokens, revoke: Callable[[str], None]) -> None:
    """Every answer of the guide's section 6, asked over HTTP."""
    with httpx.Client(base_url=api.url, timeout=30) as http:
        # Allowed; what each role sees (exposure); what a caller may set (mass assignment).
        mine = http.post("/notes", json={"text": "alice's"}, headers=bearer(tokens.alice))
        assert mine.status_code == 201, mine.text
        assert set(mine.json()) == {"id", "text"}
        theirs = http.post("/notes", json={"text": "carol's"}, headers=bearer(tokens.carol))
        assert theirs.status_code == 201, theirs.text
        assert set(theirs.json()) == {"id", "text", "owner"}
        listed = http.get("/notes", headers=bearer(tokens.alice))
        assert listed.json() == [{"id": mine.json()["id"], "text": "alice's"}]
        assigned = http.post("/notes", json={"text": "x", "owner": "mallory"}, headers=bearer(tokens.alice))
        assert assigned.status_code == 422
        [error] = assigned.json()["detail"]
        assert (error["type"], error["loc"][-1], error["msg"]) == ("read_only", "owner", READ_ONLY)

        # 401 without a token; 403 insufficient_scope; the role refusal; the object rule.
        anonymous = http.get("/notes")
        assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, 'Bearer realm="notes"')
        read_only = http.post("/notes", json={"text": "x"}, headers=bearer(tokens.alice_read_only))
        assert read_only.status_code == 403
        assert read_only.json()["error"] == "insufficient_scope"
        assert 'scope="notes:write"' in read_only.headers["www-authenticate"]
        admin = http.get("/admin/notes", headers=bearer(tokens.alice))
        assert (admin.status_code, admin.json()) == (403, NO_ROLES)
        everything = http.get("/admin/notes", headers=bearer(tokens.carol))
        assert everything.status_code == 200
        assert sorted(n["text"] for n in everything.json()) == ["alice's", "carol's"]
        other = http.get(f"/notes/{theirs.json()['id']}", headers=bearer(tokens.alice))
        not_found = {"error": "not_found", "error_description": NotFound().description}
        assert (other.status_code, other.json()) == (404, not_found)
        gone = http.delete(f"/notes/{theirs.json()['id']}", headers=bearer(tokens.alice))
        assert gone.status_code == 404

        # API keys: a system's route takes one; a person's route does not.
        key = api.make_key()
        stats = http.get("/stats", headers={"X-API-Key": key})
        assert stats.status_code == 200, stats.text
        assert stats.json()["caller"].startswith("apikey:")
        assert http.get("/notes", headers={"X-API-Key": key}).json()["error"] == "invalid_request"

        # A per-person limit: carol's sixth export in a minute is refused; alice still exports.
        exports = [http.get("/notes/export", headers=bearer(tokens.carol)) for _ in range(7)]
        assert [r.status_code for r in exports] == [200] * 5 + [429] * 2
        assert int(exports[5].headers["retry-after"]) > 0
        assert http.get("/notes/export", headers=bearer(tokens.alice)).status_code == 200

        # A token revoked at the issuer is refused within the poll interval.
        revoke(tokens.alice)
        deadline = time.monotonic() + REVOKED_WITHIN
        while (refused := http.get("/notes", headers=bearer(tokens.alice))).status_code == 200:
            assert time.monotonic() < deadline, "the revoked token is still accepted"
            time.sleep(0.1)
        assert (refused.status_code, refused.json()) == (401, INVALID)

    # The audit trail: the app's actions and the guard's refusals, chained; the CLI verifies it.
    entries = [json.loads(line) for line in (api.directory / "data" / "audit.jsonl").read_text().splitlines()]
    actions = [e["action"] for e in entries]
    assert actions.count("note.created") == 2
    assert "request.refused" in actions
    verified = subprocess.run(
        [sys.executable, "-m", "bastion", "audit", "verify", str(api.directory / "data" / "audit.jsonl")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


# ---- against a real `bastion serve` ----------------------------------------------------------


def cli(server: LiveServer, *args: str, stdin: str | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bastion", *args, "--json", "--data-dir", str(server.data_dir)],
        env=server.env, input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


async def user_tokens(server: LiveServer, spa: dict[str, Any]) -> Tokens:
    """Alice and carol sign in through the pages (carol, an admin, enrols a second factor)."""
    people = {}
    for name, roles in (("alice", ()), ("carol", ("admin",))):
        args = ["users", "create", "--username", name, "--email", f"{name}@example.com", "--password-stdin"]
        args += [a for role in roles for a in ("--role", role)]
        people[name] = Person(cli(server, *args, stdin=PASSWORD + "\n")["sub"], name, PASSWORD)

    async def sign_in(browser: httpx.AsyncClient, person: Person | None, scope: str) -> str:
        outcome = await authorize(browser, spa, person, scope=scope)
        assert outcome.location.startswith(CALLBACK), (outcome.response.status_code, outcome.response.text[:600])
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await exchange(http, spa, outcome.params["code"], outcome.verifier)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    tokens: dict[str, str] = {}
    for name, scopes in (("alice", ("openid notes:read notes:write", "openid notes:read")),
                         ("carol", ("openid notes:read notes:write roles",))):  # fmt: skip
        async with httpx.AsyncClient(base_url=server.url) as browser:
            browser.event_hooks["response"] = [keep_session_cookie(browser)]
            for index, scope in enumerate(scopes):
                tokens[f"{name}{index}"] = await sign_in(browser, people[name] if index == 0 else None, scope)
    return Tokens(tokens["alice0"], tokens["alice1"], tokens["carol0"])


@pytest.mark.server
@pytest.mark.anyio
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_guide_apps_with_bastion(live_server: LiveServer, tmp_path: Path, shape: str) -> None:
    """Both apps of the guide, trusting a real `bastion serve`, give every answer the guide promises."""
    spa = live_server.create_client(
        "--name", "Notes SPA", "--grant", "authorization_code", "--grant", "refresh_token",
        "--auth-method", "none", "--redirect-uri", CALLBACK, "--scope", "openid notes:read notes:write roles",
    )  # fmt: skip
    api_client = live_server.create_client(
        "--name", "Notes API", "--grant", "client_credentials", "--scope", "notes:read",
        "--introspect", "--audience", audience(live_server),
    )  # fmt: skip
    tokens = await user_tokens(live_server, spa)

    def revoke(token: str) -> None:
        response = httpx.post(
            live_server.url + "/revoke", data={"token": token, "client_id": spa["client_id"]}, timeout=10
        )
        assert response.status_code == 200, response.text

    settings = {
        "NOTES_ISSUER": live_server.url,
        "NOTES_AUDIENCE": audience(live_server),
        "NOTES_CLIENT_ID": api_client["client_id"],
        "NOTES_CLIENT_SECRET": api_client["client_secret"],
        "NOTES_APIKEYS_DATABASE_URL": live_server.env["BASTION_DATABASE_URL"],
    }
    with serving(shape, tmp_path, live_server, **settings) as api:
        exercise(api, tokens, revoke)


# ---- against another OpenID Connect issuer ---------------------------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
def test_guide_apps_with_another_issuer(tmp_path: Path, shape: str) -> None:
    """The same apps, configured only with another issuer's URL, audience and credentials."""
    with running_issuer() as issuer:
        tokens = Tokens(
            issuer.mint(sub="alice"),
            issuer.mint(sub="alice", scope="notes:read"),
            issuer.mint(sub="carol", roles=["admin"]),
        )

        def revoke(token: str) -> None:
            claims = claims_of(token)
            issuer.revoke(claims["jti"], claims["exp"])

        settings = {
            "NOTES_ISSUER": issuer.issuer,
            "NOTES_AUDIENCE": AUDIENCE,
            "NOTES_CLIENT_ID": REVOCATION_CLIENT[0],
            "NOTES_CLIENT_SECRET": REVOCATION_CLIENT[1],
        }
        with serving(shape, tmp_path, **settings) as api:
            exercise(api, tokens, revoke)


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return claims
