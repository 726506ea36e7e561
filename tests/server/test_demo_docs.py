"""The demo as a newcomer meets it, against a real `bastion serve` in development mode: `bastion
demo token` gives each person the scopes of their role (carol, the admin, reaches the admin
routes), an unknown user is told who the demo users are, the landing page links the demo, and
`/demo/docs` is interactive API docs served without any CDN, under a strict CSP (Chromium)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from tests import _services
from tests._live import LiveServer
from tests.server.test_browser_flow import CHROMIUM_ARGS
from tests.server.test_demo_mount import demo_server  # noqa: F401 - the fixture, shared
from tests.server.test_pages_browser import ARTIFACTS, DESKTOP, shoot

pytestmark = [pytest.mark.anyio, pytest.mark.server]


def _token(server: LiveServer, user: str) -> str:
    result = server.cli("demo", "token", "--user", user)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_default_scopes_follow_the_role(demo_server: LiveServer) -> None:  # noqa: F811 - the fixture
    """carol's default token reaches /demo/admin/notes; alice's (a member) is refused there but reads notes."""
    carol, alice = _token(demo_server, "carol"), _token(demo_server, "alice")
    with httpx.Client(base_url=demo_server.url, timeout=30) as http:
        admin = http.get("/demo/admin/notes", headers={"authorization": f"Bearer {carol}"})
        member = http.get("/demo/admin/notes", headers={"authorization": f"Bearer {alice}"})
        notes = http.get("/demo/notes", headers={"authorization": f"Bearer {alice}"})
        me = http.get("/demo/me", headers={"authorization": f"Bearer {carol}"}).json()
    assert admin.status_code == 200, admin.text
    assert {note["tenant"] for note in admin.json()} == {"acme"}
    assert member.status_code == 403
    assert notes.status_code == 200
    assert me["scopes"] == ["notes:admin", "notes:read", "notes:write"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unknown_user_is_told_the_demo_users(demo_server: LiveServer) -> None:  # noqa: F811 - the fixture
    """`--user mallory` exits 2 naming the valid users, not "start bastion serve once"."""
    result = demo_server.cli("demo", "token", "--user", "mallory")
    assert result.returncode == 2
    assert "'mallory' is not a demo user; use one of alice, bob, carol (admin), dave" in result.stderr
    assert "start `bastion serve`" not in result.stderr
    assert result.stdout == ""


@pytest.mark.browser
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_interactive_docs_send_a_request(demo_server: LiveServer) -> None:  # noqa: F811 - the fixture
    """From the landing page to /demo/docs: a pasted token and "Send" show the API's answer, with no external asset."""
    from playwright.async_api import async_playwright, expect

    token = await anyio.to_thread.run_sync(_token, demo_server, "carol")
    requested: list[str] = []
    violations: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=_services.need_chromium(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=DESKTOP)
            page.on("request", lambda r: requested.append(r.url))
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            await page.goto(demo_server.url + "/")
            await shoot(page, ARTIFACTS / "demo", "1-landing")
            await page.click("#link-demo")
            await page.wait_for_selector("form.try:not([hidden])")
            await page.fill("#token", token)
            operation = page.locator("form.try[data-method=GET][data-path='/admin/notes']")
            await operation.locator("button").click()
            await expect(operation.locator("output")).to_contain_text("200 OK")
            answer = await operation.locator("output").text_content() or ""
            await shoot(page, ARTIFACTS / "demo", "2-docs")
            csp = await page.evaluate("fetch('docs').then(r => r.headers.get('content-security-policy'))")
        finally:
            await browser.close()
    assert answer.startswith("200 OK\n["), answer
    assert "carol's note" in answer or "alice's note" in answer
    assert all(url.startswith(demo_server.url + "/") for url in requested), requested
    assert violations == []
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
