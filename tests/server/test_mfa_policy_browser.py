"""The MFA policy (`bastion serve --mfa ... --mfa-roles ...`), a user marked `users set-mfa USER
required` and a client registered `--require-mfa`, driven by a real browser (Debian chromium via
Playwright) through a real `bastion serve` on SQLite and PostgreSQL: the browser is sent to TOTP
enrolment, or to the TOTP step once enrolled, exactly when the policy says; `optional` offers the
enrolment with a "Not now"; and the ID and access tokens' `acr`/`amr` say what happened.
Screenshots of every page go to test-artifacts/mfa-policy/ (git-ignored)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pyotp
import pytest

from bastion.config import Settings
from bastion.protocol.oidc import ACR_MFA, ACR_PASSWORD
from bastion.protocol.rfc7636 import s256_challenge
from tests import _services
from tests._live import LiveServer, start_server
from tests.conftest import prepare
from tests.server.test_browser_flow import CHROMIUM_ARGS, PASSWORD, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.browser, pytest.mark.server]

CALLBACK = "https://spa.example/callback"
ARTIFACTS = _services.ROOT / "test-artifacts" / "mfa-policy"
PASSWORD_ONLY = (ACR_PASSWORD, ["pwd"])
WITH_TOTP = (ACR_MFA, ["pwd", "otp", "mfa"])
ENROL, OFFER, TOTP, CONSENT = "enrol", "enrol-offer", "totp", "consent"


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """Start `bastion serve ARGS` on this test's database (one per test)."""
    servers: list[LiveServer] = []
    asyncio.run(prepare(settings))

    def start(*args: str) -> LiveServer:
        servers.append(start_server(settings, tmp_path, args=args))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def spa(server: LiveServer, name: str = "Example SPA", *extra: str) -> dict[str, Any]:
    return server.create_client(
        "--name", name, "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", "openid profile", *extra,
    )  # fmt: skip


@dataclass
class SignIn:
    """What one sign-in went through (the pages after the password) and the tokens it bought."""

    steps: list[str]
    id_token: dict[str, Any] = field(default_factory=dict)
    access_token: dict[str, Any] = field(default_factory=dict)
    secret: str | None = None

    @property
    def acr_amr(self) -> tuple[tuple[str, list[str]], tuple[str, list[str]]]:
        """(acr, amr) of the ID token and of the access token."""
        return (
            (self.id_token["acr"], self.id_token["amr"]),
            (self.access_token["acr"], self.access_token["amr"]),
        )


class Driver:
    """Chromium signing in, each sign-in in a fresh browser context (no session carried over)."""

    def __init__(self, browser: Any, server: LiveServer, shots: Path) -> None:
        self.browser, self.server, self.shots = browser, server, shots
        self.count = 0

    @staticmethod
    async def _go(page: Any, selector: str) -> None:
        """Click and wait for the page it leads to (at another address: each step's does)."""
        before = page.url
        await page.click(selector)
        await page.wait_for_url(lambda url: url != before)

    async def _shot(self, page: Any, name: str) -> None:
        self.count += 1
        await page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"), full_page=True)

    async def sign_in(
        self,
        client: dict[str, Any],
        username: str,
        *,
        secret: str | None = None,
        decline: bool = False,
        acr_values: str | None = None,
    ) -> SignIn:
        """Sign in as `username` for `client`: enrol when sent to enrolment (or decline an offer
        when `decline`), give the TOTP code of `secret` when asked, approve consent; exchange the code."""
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = await context.new_page()
            landed: list[str] = []

            async def callback(route: Any) -> None:
                landed.append(route.request.url)
                await route.fulfill(status=200, content_type="text/html", body="<h1>SPA callback</h1>")

            await page.route(CALLBACK + "*", callback)
            # A redirect's target is not always routed (Playwright calls a route for the first URL
            # of a redirect chain); the request itself is always seen, so record it there too.
            page.on("request", lambda request: landed.append(request.url) if request.url.startswith(CALLBACK) else None)
            verifier = "v" * 43
            query = {
                "response_type": "code", "client_id": client["client_id"], "redirect_uri": CALLBACK,
                "scope": "openid profile", "state": "s", "nonce": "n",
                "code_challenge": s256_challenge(verifier), "code_challenge_method": "S256",
            }  # fmt: skip
            if acr_values:
                query["acr_values"] = acr_values
            await page.goto(f"{self.server.url}/authorize?{httpx.QueryParams(query)}")
            await page.fill("input[name=username]", username)
            await page.fill("input[name=password]", PASSWORD)
            await self._shot(page, f"{username}-login")
            await self._go(page, 'form[action="/login"] button[type=submit]')
            result = SignIn(steps=[])
            while not landed:
                path = urlsplit(page.url).path
                if path == "/mfa/enrol":
                    offered = await page.locator("button[name=skip]").count() == 1
                    result.steps.append(OFFER if offered else ENROL)
                    await self._shot(page, f"{username}-{result.steps[-1]}")
                    if decline:
                        await self._go(page, "button[name=skip]")
                        continue
                    result.secret = (await page.text_content("#totp-secret") or "").strip()
                    await page.fill("input[name=code]", pyotp.TOTP(result.secret).now())
                    await page.click('form[action="/mfa/enrol"] button[type=submit]:not([name=skip])')
                    await page.wait_for_selector('a[href^="/authorize/resume"]')
                    await self._shot(page, f"{username}-recovery-codes")
                    await self._go(page, 'a[href^="/authorize/resume"]')
                elif path == "/login/mfa":
                    result.steps.append(TOTP)
                    await self._shot(page, f"{username}-totp")
                    assert secret is not None, "asked for a TOTP code of a user with no known secret"
                    # The enrolment used this step's code: the next step's (inside the window) is new.
                    await page.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() + 30))
                    await self._go(page, 'form[action="/login/mfa"] button[type=submit]')
                elif path == "/consent":
                    result.steps.append(CONSENT)
                    await self._shot(page, f"{username}-consent")
                    await self._go(page, "button[value=approve]")
                else:
                    await self._shot(page, f"{username}-unexpected")
                    raise AssertionError(f"unexpected page {page.url}: {await page.content()}")
        finally:
            await context.close()
        code = parse_qs(urlsplit(landed[0]).query)["code"][0]
        async with httpx.AsyncClient(base_url=self.server.url) as http:
            token = await http.post(
                "/token",
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                      "client_id": client["client_id"], "code_verifier": verifier},
            )  # fmt: skip
        assert token.status_code == 200, token.text
        unverified = {"verify_signature": False}
        result.id_token = jwt.decode(token.json()["id_token"], options=unverified)
        result.access_token = jwt.decode(token.json()["access_token"], options=unverified)
        return result


@pytest.fixture
async def chromium(request: pytest.FixtureRequest) -> Any:
    """A launched Chromium and the screenshot directory of this test."""
    executable = _services.need_chromium()
    from playwright.async_api import async_playwright

    shots = ARTIFACTS / request.node.name.replace("[", "-").rstrip("]")
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser, shots
        finally:
            await browser.close()


def _driver(chromium: Any, server: LiveServer) -> Driver:
    browser, shots = chromium
    return Driver(browser, server, shots)


async def test_required_sends_everyone_to_enrolment_then_to_the_totp_step(serve, chromium):
    """--mfa required: a user with no role is sent to enrolment (no "Not now"), and at the next
    sign-in to the TOTP step; both times the tokens say acr mfa, amr pwd otp mfa."""
    server = serve("--mfa", "required")
    client = spa(server)
    create_user(server, "dana")
    driver = _driver(chromium, server)

    first = await driver.sign_in(client, "dana")
    second = await driver.sign_in(client, "dana", secret=first.secret)

    assert first.steps == [ENROL, CONSENT]
    assert first.acr_amr == (WITH_TOTP, WITH_TOTP)
    assert second.steps == [TOTP]
    assert second.acr_amr == (WITH_TOTP, WITH_TOTP)


@pytest.mark.parametrize(
    ("args", "forced", "free"),
    [
        pytest.param((), "admin", "staff", id="default-admin"),
        pytest.param(("--mfa", "roles", "--mfa-roles", "auditor,ops"), "auditor", "admin", id="auditor"),
    ],
)
async def test_roles_policy_sends_only_holders_of_the_listed_roles(serve, chromium, args, forced, free):
    """--mfa roles (the default, with admin): a holder of a listed role is sent to enrolment and
    gets acr mfa; a holder of another role (admin itself when it is not listed) signs in with the
    password alone and gets acr password."""
    server = serve(*args)
    client = spa(server)
    create_user(server, "holder", forced)
    create_user(server, "other", free)
    driver = _driver(chromium, server)

    held = await driver.sign_in(client, "holder")
    other = await driver.sign_in(client, "other")

    assert held.steps == [ENROL, CONSENT]
    assert held.acr_amr == (WITH_TOTP, WITH_TOTP)
    assert other.steps == [CONSENT]
    assert other.acr_amr == (PASSWORD_ONLY, PASSWORD_ONLY)


async def test_off_still_honours_a_user_marked_require_mfa(serve, chromium):
    """--mfa off: an admin signs in with the password alone (acr password), but a user marked
    `users set-mfa USER required` is sent to enrolment (acr mfa); marked `default` again, a user
    with no factor signs in with the password alone."""
    server = serve("--mfa", "off")
    client = spa(server)
    create_user(server, "carol", "admin")
    create_user(server, "bob")
    create_user(server, "erin")
    for name, requirement in (("bob", "required"), ("erin", "required"), ("erin", "default")):
        marked = server.cli("users", "set-mfa", name, requirement, "--json")
        assert marked.returncode == 0, marked.stderr
    driver = _driver(chromium, server)

    admin = await driver.sign_in(client, "carol")
    marked_user = await driver.sign_in(client, "bob")
    unmarked_again = await driver.sign_in(client, "erin")

    assert admin.steps == [CONSENT]
    assert admin.acr_amr == (PASSWORD_ONLY, PASSWORD_ONLY)
    assert marked_user.steps == [ENROL, CONSENT]
    assert marked_user.acr_amr == (WITH_TOTP, WITH_TOTP)
    assert unmarked_again.steps == [CONSENT]
    assert unmarked_again.acr_amr == (PASSWORD_ONLY, PASSWORD_ONLY)


async def test_off_still_honours_a_require_mfa_client_and_acr_values(serve, chromium):
    """--mfa off: the same user signs in to an ordinary client with the password alone, and is
    sent to enrolment by a client registered --require-mfa; another user is sent to enrolment by
    a request with acr_values=urn:bastion:acr:mfa. The tokens say which."""
    server = serve("--mfa", "off")
    lax = spa(server)
    strict = spa(server, "Strict SPA", "--require-mfa")
    create_user(server, "frank")
    create_user(server, "gwen")
    driver = _driver(chromium, server)

    ordinary = await driver.sign_in(lax, "frank")
    required_by_client = await driver.sign_in(strict, "frank")
    asked_by_request = await driver.sign_in(lax, "gwen", acr_values=ACR_MFA)

    assert ordinary.steps == [CONSENT]
    assert ordinary.acr_amr == (PASSWORD_ONLY, PASSWORD_ONLY)
    assert required_by_client.steps == [ENROL, CONSENT]
    assert required_by_client.acr_amr == (WITH_TOTP, WITH_TOTP)
    assert asked_by_request.steps == [ENROL, CONSENT]
    assert asked_by_request.acr_amr == (WITH_TOTP, WITH_TOTP)


async def test_optional_offers_enrolment_and_never_forces_it(serve, chromium):
    """--mfa optional: a user without a factor (an admin: roles force nothing here) is offered
    enrolment and may decline it (acr password, amr pwd); offered again, enrols (acr mfa); once
    enrolled, is sent to the TOTP step (acr mfa)."""
    server = serve("--mfa", "optional")
    client = spa(server)
    create_user(server, "holly", "admin")
    driver = _driver(chromium, server)

    declined = await driver.sign_in(client, "holly", decline=True)
    enrolled = await driver.sign_in(client, "holly")
    with_factor = await driver.sign_in(client, "holly", secret=enrolled.secret)

    assert declined.steps == [OFFER, CONSENT]
    assert declined.acr_amr == (PASSWORD_ONLY, PASSWORD_ONLY)
    assert enrolled.steps == [OFFER]
    assert enrolled.acr_amr == (WITH_TOTP, WITH_TOTP)
    assert with_factor.steps == [TOTP]
    assert with_factor.acr_amr == (WITH_TOTP, WITH_TOTP)
