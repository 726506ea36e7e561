"""What a database carried over (upgraded, or restored from a backup) must still serve, asked of
a real `bastion serve` over HTTP: keys, a client's token, a refresh token, a person's sign-in."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests._live import LiveServer, keep_session_cookie
from tests.server._people import CALLBACK, Person, authorize, exchange, refresh

# The public client of the browser flows: what `bastion clients create` is given for it.
SPA_SCOPE = "openid profile email offline_access"
SPA_ARGS = (
    "--name", "SPA",
    "--grant", "authorization_code", "--grant", "refresh_token",
    "--auth-method", "none",
    "--redirect-uri", CALLBACK,
    "--scope", SPA_SCOPE,
)  # fmt: skip


def header(jwt: str) -> dict[str, Any]:
    """The protected header of a compact JWS (read only to see which key signed it)."""
    segment = jwt.split(".", 1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


async def jwks(server: LiveServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/jwks")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def client_credentials(server: LiveServer, client_id: str, secret: str) -> dict[str, Any]:
    """A Client Credentials token for the client, authenticated with `secret` (Basic)."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refreshed(server: LiveServer, client: dict[str, Any], token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await refresh(http, client, token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(
    server: LiveServer,
    client: dict[str, Any],
    person: Person,
    *,
    consent: str | None = None,
    second_factor: str | None = None,
) -> dict[str, Any]:
    """A whole sign-in in a new browser: authorize, password, (second factor), (consent), code
    exchange; the tokens. Without `consent`, a consent page fails it: consent must be remembered."""
    async with httpx.AsyncClient(base_url=server.url) as browser, httpx.AsyncClient(base_url=server.url) as http:
        browser.event_hooks["response"] = [keep_session_cookie(browser)]
        outcome = await authorize(browser, client, person, consent=consent, totp_code=second_factor)
        assert outcome.location.startswith(CALLBACK), (outcome.response.status_code, outcome.response.text[:600])
        response = await exchange(http, client, outcome.params["code"], outcome.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
