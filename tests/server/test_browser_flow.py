"""A real browser (Debian chromium via Playwright) through login, TOTP enrolment, consent and the
redirect of a public SPA-style client, against a real `bastion serve`; then the code exchange and
userinfo. Screenshots of each page go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest

from bastion.protocol.rfc7636 import s256_challenge
from tests import _services

pytestmark = [pytest.mark.anyio, pytest.mark.browser, pytest.mark.server]

CALLBACK = "https://spa.example/callback"
ARTIFACTS = _services.ROOT / "test-artifacts" / "browser-flow"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a long and unusual passphrase"


def create_user(server, username: str, *roles: str) -> dict:
    args = [
        sys.executable,
        "-m",
        "bastion",
        "users",
        "create",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
    ]
    for role in roles:
        args += ["--role", role]
    args += ["--password-stdin", "--json", "--data-dir", str(server.data_dir)]
    result = subprocess.run(
        args, env=server.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_spa_login_totp_consent_redirect_and_userinfo(live_server, request):
    """Chromium logs in, enrols TOTP from the QR page, consents, lands on the SPA callback; the code buys tokens."""
    chromium = _services.need_chromium()
    from playwright.async_api import async_playwright

    user = create_user(live_server, "alice", "admin")
    client = live_server.create_client(
        "--name",
        "Example SPA",
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
    verifier = "v" * 20 + "erifier-for-the-browser-test-0123456789"
    query = httpx.QueryParams(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": CALLBACK,
            "scope": "openid profile email offline_access",
            "state": "browser-state",
            "nonce": "browser-nonce",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    shots = ARTIFACTS / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)
    landed: list[str] = []

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844})
            page = await context.new_page()

            async def callback(route):
                landed.append(route.request.url)
                await route.fulfill(status=200, content_type="text/html", body="<h1>SPA callback</h1>")

            await page.route(CALLBACK + "*", callback)
            await page.goto(f"{live_server.url}/authorize?{query}")
            await page.screenshot(path=str(shots / "1-login.png"), full_page=True)
            cookies = await context.cookies()
            assert [c["name"] for c in cookies] == ["__Host-bastion-session"], cookies
            # Chromium keeps a Secure, __Host- cookie on http://127.0.0.1: loopback is a secure context.
            assert cookies[0]["secure"]
            assert cookies[0]["httpOnly"]
            assert cookies[0]["sameSite"] == "Lax"

            await page.fill("#username", "alice")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#totp-secret")
            await page.screenshot(path=str(shots / "2-totp-enrolment.png"), full_page=True)
            assert await page.locator("figure.qr svg").count() == 1

            secret = (await page.text_content("#totp-secret") or "").strip()
            await page.fill("#code", pyotp.TOTP(secret).now())
            await page.click("button[type=submit]")
            await page.wait_for_selector("#recovery-codes")
            await page.screenshot(path=str(shots / "3-recovery-codes.png"), full_page=True)
            assert await page.locator("#recovery-codes li").count() == 10

            await page.click("a.button")
            await page.wait_for_selector("button[value=approve]")
            await page.screenshot(path=str(shots / "4-consent.png"), full_page=True)
            assert "Example SPA" in await page.content()

            await page.click("button[value=approve]")
            await page.wait_for_url(CALLBACK + "*")
            await page.screenshot(path=str(shots / "5-callback.png"), full_page=True)
        finally:
            await browser.close()

    assert len(landed) == 1
    params = {k: v[0] for k, v in parse_qs(urlsplit(landed[0]).query).items()}
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "browser-state"
    assert params["iss"] == live_server.url

    async with httpx.AsyncClient(base_url=live_server.url) as http:
        token = await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": CALLBACK,
                "client_id": client["client_id"],
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
        tokens = token.json()
        info = await http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})

    assert info.status_code == 200
    assert info.json()["sub"] == user["sub"]
    assert info.json()["email"] == "alice@example.com"
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-login.png",
        "2-totp-enrolment.png",
        "3-recovery-codes.png",
        "4-consent.png",
        "5-callback.png",
    ]
