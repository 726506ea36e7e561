"""Fixtures and a small browser driver for the people and browser-flow tests (issue 3).

Test modules import the fixtures they use: `from tests.server._people import *`.
The in-process client uses an https base URL so httpx's cookie jar keeps and sends the
`Secure` session cookie (the ASGI app does not care about the scheme).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bastion.config import Settings
from bastion.identity import NewUser, totp, users
from bastion.protocol.rfc7636 import s256_challenge
from bastion.server import create_app
from bastion.server.context import ServerContext
from tests.conftest import make_settings

PASSWORD = "a long and unusual passphrase"
CALLBACK = "https://spa.example/callback"
LOGGED_OUT = "https://spa.example/logged-out"  # the SPA's registered post_logout_redirect_uri
BROWSER_BASE = "https://127.0.0.1:8000"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings with the cheap `testing` password profile (serve refuses it)."""
    return make_settings(db_url, tmp_path, password_hashing="testing")


@pytest.fixture
async def browser(settings: Settings, ctx: ServerContext) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client that keeps cookies like a browser does."""
    app = create_app(settings, ctx)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url=BROWSER_BASE) as client:
        yield client


@dataclass
class Person:
    sub: str
    username: str
    password: str
    totp_secret: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class UserMaker:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def __call__(
        self,
        username: str = "alice",
        *,
        roles: tuple[str, ...] = (),
        email: str = "alice@example.com",
        profile: dict[str, Any] | None = None,
    ) -> Person:
        assert self.ctx.people is not None
        new = NewUser(
            username=username,
            email=email,
            email_verified=True,
            display_name=username.title(),
            roles=roles,
            profile=profile or {},
        )
        user = await users.create_user(self.ctx.database, self.ctx.people.passwords, new, PASSWORD)
        return Person(user.sub, username, PASSWORD)


@pytest.fixture
def make_user(ctx: ServerContext) -> UserMaker:
    return UserMaker(ctx)


@pytest.fixture
async def spa(register: Any) -> dict[str, Any]:
    """A public SPA-style client: Authorization Code + PKCE and refresh tokens."""
    return dict(
        await register(
            name="Example SPA",
            grants=("authorization_code", "refresh_token"),
            scope=("openid", "profile", "email", "offline_access", "roles", "read"),
            auth_method="none",
            redirect_uris=(CALLBACK, "http://127.0.0.1/native"),
            post_logout_redirect_uris=(LOGGED_OUT,),
        )
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, s256_challenge(verifier)


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Outcome:
    """Where the flow ended: the redirect to the client (with its query) or a page."""

    response: httpx.Response
    verifier: str
    nonce: str
    state: str

    @property
    def location(self) -> str:
        return self.response.headers.get("location", "")

    @property
    def params(self) -> dict[str, str]:
        return query_of(self.location)


def authorize_params(client: dict[str, Any], challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": CALLBACK,
        "scope": "openid profile email offline_access",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def follow(browser: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """Follow 303s that stay on the server; stop at a page or at a redirect to the client."""
    while response.status_code == 303 and response.headers["location"].startswith("/"):
        response = await browser.get(response.headers["location"])
    return response


async def submit(browser: httpx.AsyncClient, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
    form = hidden_fields(page.text)
    form.update(fields)
    return await follow(browser, await browser.post(action, data=form))


async def authorize(
    browser: httpx.AsyncClient,
    client: dict[str, Any],
    user: Person | None = None,
    *,
    consent: str | None = "approve",
    totp_code: str | None = None,
    **overrides: str | None,
) -> Outcome:
    """Drive authorize -> login -> (MFA) -> consent and return where it ended."""
    verifier, challenge = pkce()
    params = authorize_params(client, challenge, **overrides)
    response = await follow(browser, await browser.get("/authorize", params=params))
    if user is not None and response.status_code == 200 and 'action="/login"' in response.text:
        response = await submit(browser, response, "/login", username=user.username, password=user.password)
    if response.status_code == 200 and 'action="/mfa/enrol"' in response.text:
        secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', response.text)
        assert secret is not None
        user_secret = secret.group(1)
        if user is not None:
            user.totp_secret = user_secret
        response = await submit(browser, response, "/mfa/enrol", code=totp.current_code(user_secret))
        assert response.status_code == 200, response.text
        codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", response.text)
        if user is not None:
            user.extra["recovery_codes"] = codes
        response = await follow(browser, await browser.get(f"/authorize/resume?request={hidden_request(response)}"))
    if response.status_code == 200 and 'action="/login/mfa"' in response.text and totp_code is not None:
        response = await submit(browser, response, "/login/mfa", code=totp_code)
    if response.status_code == 200 and 'action="/consent"' in response.text and consent is not None:
        response = await submit(browser, response, "/consent", decision=consent)
    return Outcome(response, verifier, params.get("nonce", ""), params.get("state", ""))


def hidden_request(page: httpx.Response) -> str:
    match = re.search(r"/authorize/resume\?request=([A-Za-z0-9_-]+)", page.text)
    assert match is not None
    return match.group(1)


async def exchange(
    http: httpx.AsyncClient, client: dict[str, Any], code: str, verifier: str | None, **overrides: str | None
) -> httpx.Response:
    data: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client["client_id"],
        "code_verifier": verifier,
    }
    data.update(overrides)
    return await http.post("/token", data={k: v for k, v in data.items() if v is not None})


async def refresh(http: httpx.AsyncClient, client: dict[str, Any], token: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client["client_id"], **extra}
    return await http.post("/token", data=data)


async def tokens_for(
    browser: httpx.AsyncClient, http: httpx.AsyncClient, client: dict[str, Any], user: Person, **overrides: str | None
) -> dict[str, Any]:
    outcome = await authorize(browser, client, user, **overrides)
    assert outcome.location.startswith(CALLBACK), outcome.response.text
    response = await exchange(http, client, outcome.params["code"], outcome.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["_nonce"] = outcome.nonce
    return body


__all__ = [
    "CALLBACK",
    "LOGGED_OUT",
    "PASSWORD",
    "Outcome",
    "Person",
    "authorize",
    "authorize_params",
    "browser",
    "exchange",
    "follow",
    "hidden_fields",
    "make_user",
    "pkce",
    "query_of",
    "refresh",
    "settings",
    "spa",
    "submit",
    "tokens_for",
]
