"""Helpers of the Device Authorization Grant tests (RFC 8628): start, poll, verify in a browser."""

from __future__ import annotations

import re
from typing import Any

import httpx

from bastion.identity import totp
from bastion.server.context import ServerContext
from bastion.store.models import device_codes
from tests.server._people import Person, follow, submit

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_SCOPE = "openid profile offline_access read"


async def start(http: httpx.AsyncClient, client: dict[str, Any], **fields: str) -> httpx.Response:
    """POST /device_authorization as a public client (or with Basic when the client has a secret)."""
    data = {"scope": DEVICE_SCOPE, **fields}
    if client.get("client_secret"):
        return await http.post("/device_authorization", data=data, auth=(client["client_id"], client["client_secret"]))
    return await http.post("/device_authorization", data={"client_id": client["client_id"], **data})


async def started(http: httpx.AsyncClient, client: dict[str, Any], **fields: str) -> dict[str, Any]:
    response = await start(http, client, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def poll(http: httpx.AsyncClient, client: dict[str, Any], device_code: str) -> httpx.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code}
    if client.get("client_secret"):
        return await http.post("/token", data=data, auth=(client["client_id"], client["client_secret"]))
    return await http.post("/token", data={**data, "client_id": client["client_id"]})


async def enter_code(browser: httpx.AsyncClient, user_code: str, typed: str | None = None) -> httpx.Response:
    """Open verification_uri_complete and submit the (pre-filled, or `typed`) code."""
    page = await browser.get("/device", params={"user_code": user_code})
    assert page.status_code == 200, page.text
    return await submit(browser, page, "/device", user_code=typed if typed is not None else user_code)


async def sign_in(browser: httpx.AsyncClient, page: httpx.Response, user: Person) -> httpx.Response:
    """Log in (enrolling TOTP if the account needs it) until the next page after login."""
    if 'action="/login"' in page.text:
        page = await submit(browser, page, "/login", username=user.username, password=user.password)
    if 'action="/mfa/enrol"' in page.text:
        secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)
        assert secret is not None
        user.totp_secret = secret.group(1)
        page = await submit(browser, page, "/mfa/enrol", code=totp.current_code(user.totp_secret))
        resume = re.search(r'href="(/authorize/resume\?request=[A-Za-z0-9_-]+)"', page.text)
        assert resume is not None, page.text
        page = await follow(browser, await browser.get(resume.group(1)))
    return page


async def verify(browser: httpx.AsyncClient, user: Person, user_code: str, decision: str = "approve") -> httpx.Response:
    """The whole verification: code, login, device consent, decision; returns the last page."""
    page = await sign_in(browser, await enter_code(browser, user_code), user)
    assert 'action="/device/consent"' in page.text, page.text
    return await submit(browser, page, "/device/consent", decision=decision)


async def expire(ctx: ServerContext, user_code: str) -> None:
    """Move a device code's expiry into the past (what waiting out its lifetime does)."""
    async with ctx.database.engine.begin() as conn:
        await conn.execute(
            device_codes.update()
            .where(device_codes.c.user_code == user_code.replace("-", ""))
            .values(created_at=device_codes.c.created_at - 3600, expires_at=device_codes.c.expires_at - 3600)
        )
