"""The pages as people meet them, in Chromium against a real `bastion serve`: the landing page,
branding from `[pages]` (name, logo, colours) that cannot inject anything, the username kept
after a wrong password, the way back to the application (access_denied to the client), scope
descriptions on consent, the tappable otpauth:// link and the recovery codes' download.

Every page is photographed at 1280x800 and 390x844 into test-artifacts/pages/."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import httpx
import pyotp
import pytest

from bastion.config import Settings
from bastion.protocol.rfc7636 import s256_challenge
from tests import _services
from tests._live import LiveServer, start_server
from tests.server.test_browser_flow import CHROMIUM_ARGS, PASSWORD, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.browser, pytest.mark.server]

ARTIFACTS = _services.ROOT / "test-artifacts" / "pages"
CALLBACK = "https://invoices.example/callback"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# A product name that would run script if it were not escaped (the config allows it: it is text).
PRODUCT = "Acme <img src=x onerror=alert(1)>"
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<circle cx="32" cy="32" r="30" fill="#c0392b"/></svg>'
)
BRANDED = f"""
[pages]
product_name = "{PRODUCT}"
logo = "LOGO"
accent_colour = "#C0392B"
background_colour = "#fdf6e3"
text_colour = "#073642"

[pages.scopes]
"invoices:read" = "See your invoices and their totals"
"""


@pytest.fixture
def branded_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real server with branding and a scope description in its TOML file."""
    from tests.conftest import prepare

    logo = tmp_path / "logo.svg"
    logo.write_bytes(LOGO)
    config = tmp_path / "bastion.toml"
    config.write_text(BRANDED.replace("LOGO", str(logo)), encoding="utf-8")
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_CONFIG=str(config))
    try:
        yield server
    finally:
        server.stop()


async def shoot(page: Any, folder: Path, name: str) -> None:
    """The page at desktop and phone sizes (left at the phone size, as people mostly are)."""
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)


def authorize_url(server: LiveServer, client_id: str, scope: str) -> str:
    query = httpx.QueryParams(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": scope,
            "state": "pages-state",
            "code_challenge": s256_challenge("v" * 43),
            "code_challenge_method": "S256",
        }
    )
    return f"{server.url}/authorize?{query}"


async def open_browser(playwright: Any) -> Any:
    return await playwright.chromium.launch(executable_path=_services.need_chromium(), args=CHROMIUM_ARGS)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_landing_page_links_this_server_only(live_server: LiveServer, request: pytest.FixtureRequest) -> None:
    """`/` is a page (not a bare 404) linking discovery and /device, only on this server, under the strict CSP."""
    from playwright.async_api import async_playwright

    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(live_server.url + "/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    async with async_playwright() as playwright:
        browser = await open_browser(playwright)
        try:
            page = await browser.new_page(viewport=DESKTOP)
            await page.goto(live_server.url + "/")
            await shoot(page, ARTIFACTS / "landing", "landing")
            links = await page.eval_on_selector_all("a", "links => links.map(a => a.href)")
            assert await page.locator("#link-demo").count() == 0  # no demo mounted
            await page.click("#link-discovery")
            assert (await page.text_content("body") or "").count('"issuer"') == 1
        finally:
            await browser.close()
    assert f"{live_server.url}/device" in links
    assert f"{live_server.url}/.well-known/openid-configuration" in links
    assert all(link.startswith(live_server.url + "/") for link in links), links


async def test_branded_login_keeps_the_username_and_goes_back_to_the_client(
    branded_server: LiveServer, request: pytest.FixtureRequest
) -> None:
    """A wrong password keeps the username; the branding shows, escaped and CSP-safe; "Back to"
    ends the flow with access_denied at the client's redirect URI."""
    from playwright.async_api import async_playwright

    create_user(branded_server, "erin")
    client = branded_server.create_client(
        "--name", "Invoice App", "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", "openid invoices:read",
    )  # fmt: skip
    folder = ARTIFACTS / f"branded-{request.node.callspec.id}"
    dialogs: list[str] = []
    landed: list[str] = []
    async with async_playwright() as playwright:
        browser = await open_browser(playwright)
        try:
            page = await browser.new_page(viewport=DESKTOP)
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))

            async def callback(route: Any) -> None:
                landed.append(route.request.url)
                await route.fulfill(status=200, content_type="text/html", body="<h1>Invoice App</h1>")

            await page.route(CALLBACK + "*", callback)
            first = await page.goto(authorize_url(branded_server, client["client_id"], "openid invoices:read"))
            assert first is not None
            await page.fill("input[name=username]", "erin")
            await page.fill("#password", "not the password")
            await page.click("button[type=submit]")
            await page.wait_for_selector("p.error")
            await shoot(page, folder, "1-login-wrong-password")

            assert await page.input_value("input[name=username]") == "erin"
            assert await page.input_value("#password") == ""
            assert await page.text_content("#product-name") == PRODUCT
            assert await page.title() == f"Sign in · {PRODUCT}"
            assert await page.locator("img[src=x]").count() == 0
            assert await page.evaluate("document.querySelector('img.logo').naturalWidth") == 64
            accent = await page.eval_on_selector("button[type=submit]", "b => getComputedStyle(b).backgroundColor")
            background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert (accent, background) == ("rgb(192, 57, 43)", "rgb(253, 246, 227)")
            assert await page.text_content("#back-to-client") == "Back to Invoice App"

            await page.click("#back-to-client")
            await page.wait_for_url(CALLBACK + "*")
        finally:
            await browser.close()

    assert dialogs == []
    params = {k: v[0] for k, v in parse_qs(urlsplit(landed[0]).query).items()}
    assert params == {
        "error": "access_denied",
        "error_description": "the user went back without signing in",
        "state": "pages-state",
        "iss": branded_server.url,
    }
    async with httpx.AsyncClient(base_url=branded_server.url, timeout=30) as http:
        logo = await http.get("/branding/logo")
        css = (await http.get("/branding.css")).text
    assert (logo.status_code, logo.headers["content-type"], logo.content) == (200, "image/svg+xml", LOGO)
    assert logo.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    assert "--accent: #c0392b;" in css


async def test_enrolment_link_recovery_download_and_scope_words(
    branded_server: LiveServer, request: pytest.FixtureRequest
) -> None:
    """Enrolment offers a tappable otpauth:// link, the recovery codes download as a no-store
    attachment, and consent shows the configured words for a custom scope."""
    from playwright.async_api import async_playwright

    create_user(branded_server, "frank")
    client = branded_server.create_client(
        "--name", "Invoice App", "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", "openid invoices:read", "--require-mfa",
    )  # fmt: skip
    folder = ARTIFACTS / f"enrolment-{request.node.callspec.id}"
    async with async_playwright() as playwright:
        browser = await open_browser(playwright)
        try:
            context = await browser.new_context(viewport=PHONE, accept_downloads=True)
            page = await context.new_page()
            await page.route(CALLBACK + "*", lambda route: route.fulfill(status=200, body="ok"))
            await page.goto(authorize_url(branded_server, client["client_id"], "openid invoices:read"))
            await page.fill("input[name=username]", "frank")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#otpauth-link")
            await shoot(page, folder, "1-enrolment")

            secret = (await page.text_content("#totp-secret") or "").strip()
            link = await page.get_attribute("#otpauth-link", "href") or ""
            assert link.startswith("otpauth://totp/")
            assert parse_qs(urlsplit(link).query)["secret"] == [secret]
            assert unquote(parse_qs(urlsplit(link).query)["issuer"][0]) == PRODUCT

            await page.fill("#code", pyotp.TOTP(secret).now())
            await page.click("button[type=submit]")
            await page.wait_for_selector("#recovery-codes")
            await shoot(page, folder, "2-recovery-codes")
            shown = [(text or "").strip() for text in await page.locator("#recovery-codes code").all_text_contents()]

            async with page.expect_download() as started:
                await page.click("#download-codes")
            download = await started.value
            assert download.suggested_filename == "recovery-codes.txt"
            saved = await anyio.Path(await download.path()).read_text(encoding="utf-8")
            assert saved.splitlines()[3:] == shown
            assert saved.splitlines()[0] == f"{PRODUCT} recovery codes for frank"

            form = {
                "csrf_token": await page.input_value("input[name=csrf_token]"),
                "codes": await page.input_value("input[name=codes]"),
            }
            answer = await context.request.post(branded_server.url + "/mfa/recovery-codes.txt", form=form)
            assert answer.status == 200
            assert answer.headers["content-disposition"] == 'attachment; filename="recovery-codes.txt"'
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["content-type"] == "text/plain; charset=utf-8"
            tampered = await context.request.post(
                branded_server.url + "/mfa/recovery-codes.txt", form={**form, "codes": form["codes"][:-4] + "AAAA"}
            )
            assert tampered.status == 400
            assert "can no longer be downloaded" in await tampered.text()

            await page.click("a.button")
            await page.wait_for_selector("button[value=approve]")
            await shoot(page, folder, "3-consent")
            scopes = await page.locator("ul.scopes li").all_text_contents()
            assert scopes == ["Confirm who you are (your account identifier)", "See your invoices and their totals"]
        finally:
            await browser.close()
