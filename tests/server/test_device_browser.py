"""The Device Authorization Grant end to end: `bastion device-login` acts as the device against a
real `bastion serve`, headless Chromium (Debian's, via Playwright) enters the code, signs in and
approves or denies; the command prints the tokens or the refusal. Screenshots of every page go
to test-artifacts/device-flow/ (git-ignored)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from bastion.config import Settings
from tests import _services
from tests._live import LiveServer, start_server
from tests.conftest import prepare
from tests.server.test_browser_flow import CHROMIUM_ARGS, PASSWORD, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.browser, pytest.mark.server]

ARTIFACTS = _services.ROOT / "test-artifacts" / "device-flow"
SCOPE = "openid profile offline_access"
USER_CODE = re.compile(r"enter the code: ([A-Z]{4}-[A-Z]{4})")
COMPLETE = re.compile(r"Or open: (\S+)")


def _server(settings: Settings, tmp_path: Path, **env: str) -> Iterator[LiveServer]:
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_DEVICE_POLL_INTERVAL="1", **env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def device_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real server whose devices poll every second."""
    yield from _server(settings, tmp_path)


@pytest.fixture
def short_lived_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real server whose device codes live 5 seconds (the shortest allowed)."""
    yield from _server(settings, tmp_path, BASTION_DEVICE_CODE_LIFETIME="5")


@dataclass
class Device:
    """A running `bastion device-login` and what it showed."""

    process: subprocess.Popen[str]
    user_code: str
    complete: str
    shown: str

    def finish(self) -> tuple[int, dict[str, Any] | None, str]:
        stdout, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, json.loads(stdout) if stdout.strip() else None, stderr


def start_device(server: LiveServer) -> Device:
    """Register a public TV client with the CLI and start `bastion device-login` for it."""
    client = server.create_client(
        "--name", "Living-room TV", "--grant", "device_code", "--grant", "refresh_token",
        "--auth-method", "none", "--scope", SCOPE,
    )  # fmt: skip
    process = subprocess.Popen(
        [
            sys.executable, "-m", "bastion", "device-login", "--issuer", server.url,
            "--client-id", client["client_id"], "--scope", SCOPE,
        ],
        env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    shown = ""
    while "Waiting for approval" not in shown:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"device-login exited early: {shown}{process.communicate(timeout=10)}")
        shown += line
    code, complete = USER_CODE.search(shown), COMPLETE.search(shown)
    assert code is not None, shown
    assert complete is not None, shown
    return Device(process, code.group(1), complete.group(1), shown)


async def _chromium(playwright: Any) -> Any:
    return await playwright.chromium.launch(executable_path=_services.need_chromium(), args=CHROMIUM_ARGS)


async def _enter_code_and_sign_in(page: Any, device: Device, shots: Path) -> None:
    await page.goto(device.complete)
    await page.screenshot(path=str(shots / "1-code.png"), full_page=True)
    assert await page.input_value("#user_code") == device.user_code
    await page.click("button[type=submit]")
    await page.wait_for_selector("#password")
    await page.screenshot(path=str(shots / "2-login.png"), full_page=True)
    assert "Living-room TV" in await page.content()
    await page.fill("#username", "alice")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("button[value=approve]")
    await page.screenshot(path=str(shots / "3-consent.png"), full_page=True)
    warning = await page.text_content("p.warning") or ""
    assert warning.startswith("Only allow this if you started it yourself on a device you own, and that device")
    assert f"shows the code {device.user_code}." in warning
    assert await page.text_content("#user-code") == device.user_code


@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_device_login_approved_or_denied_in_chromium(device_server, request, decision):
    """The command shows a code and QR code; Chromium signs in and decides; the command prints tokens or the denial."""
    from playwright.async_api import async_playwright

    _services.need_chromium()
    user = create_user(device_server, "alice")
    device = start_device(device_server)
    shots = ARTIFACTS / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "0-terminal.txt").write_text(device.shown, encoding="utf-8")

    try:
        async with async_playwright() as playwright:
            browser = await _chromium(playwright)
            try:
                page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
                await _enter_code_and_sign_in(page, device, shots)
                await page.click(f"button[value={decision}]")
                await page.wait_for_selector("p[role=status]")
                await page.screenshot(path=str(shots / "4-done.png"), full_page=True)
                done = await page.text_content("p[role=status]") or ""
            finally:
                await browser.close()
        returncode, tokens, stderr = device.finish()
    finally:
        if device.process.poll() is None:
            device.process.kill()
            device.process.communicate(timeout=10)

    assert "\u2588" in device.shown or "\u2580" in device.shown or "\u2584" in device.shown  # the QR code
    if decision == "deny":
        assert done.startswith("You denied the request.")
        assert (returncode, tokens) == (1, None)
        assert stderr.strip().endswith("error: access_denied: the user denied the request")
        return
    assert done.startswith("You allowed the device.")
    assert returncode == 0, stderr
    assert tokens is not None
    assert set(tokens) == {"access_token", "token_type", "expires_in", "scope", "id_token", "refresh_token"}
    assert tokens["scope"] == SCOPE
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (claims["iss"], claims["sub"]) == (device_server.url, user["sub"])


async def test_device_code_expires_before_approval(short_lived_server, request):
    """Nobody approves within 5 s: the command exits with expired_token and the page refuses the code."""
    from playwright.async_api import async_playwright

    _services.need_chromium()
    create_user(short_lived_server, "alice")
    device = start_device(short_lived_server)
    shots = ARTIFACTS / "expiry" / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)

    returncode, tokens, stderr = device.finish()
    async with async_playwright() as playwright:
        browser = await _chromium(playwright)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(device.complete)
            await page.click("button[type=submit]")
            await page.wait_for_selector("p.error")
            await page.screenshot(path=str(shots / "1-expired-code.png"), full_page=True)
            error = await page.text_content("p.error")
            remaining = await page.text_content("#attempts-remaining")
        finally:
            await browser.close()

    assert (returncode, tokens) == (1, None)
    assert stderr.strip().endswith(
        "error: expired_token: the device code has expired; start a new device authorization request"
    )
    assert error == "That code is not valid, or it has expired. Check the code on your device."
    assert remaining == "9 attempts remaining."
