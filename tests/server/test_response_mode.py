"""`response_mode` through a real `bastion serve` on SQLite and PostgreSQL: discovery lists query
and form_post; with form_post the code, and every error after the redirect URI is known, arrive
as a page whose form posts them to the redirect URI (OAuth 2.0 Form Post Response Mode §2), its
one inline script allowed by its hash in the page's Content-Security-Policy; fragment and
unknown modes are invalid_request, answered in the query (the default mode of a code request).
A real Chromium shows that the page posts itself."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest

from tests import _services
from tests._live import keep_session_cookie
from tests.server._people import CALLBACK, authorize_params, exchange, follow, hidden_fields, pkce, submit
from tests.server.test_browser_flow import CHROMIUM_ARGS, PASSWORD, create_user
from tests.server.test_live_negative import Live, live  # noqa: F401 - the module's server, per database

pytestmark = [pytest.mark.anyio, pytest.mark.server]

SCRIPT = "document.forms[0].submit();"
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
FORM_POST_CSP = f"default-src 'self'; script-src '{SCRIPT_HASH}'; frame-ancestors 'none'"
SPA_SCOPE = "openid profile email offline_access"


def _spa(live: Live) -> dict[str, Any]:  # noqa: F811 - the fixture's value
    """A public SPA-style client, registered with the CLI (the tests are async: no event loop of their own)."""
    return live.server.create_client(
        "--name", "Example SPA", "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", SPA_SCOPE,
    )  # fmt: skip


@pytest.fixture
async def browser(live: Live) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811 - the fixture
    """A cookie-keeping client of the module's server."""
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        client.event_hooks["response"] = [keep_session_cookie(client)]
        yield client


def _form_post(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The form_post page's form: its action and its fields (the page must be exactly one form
    of hidden fields, a submit button and the script whose hash the policy names)."""
    forms = re.findall(r'<form method="post" action="([^"]*)">', page.text)
    scripts = re.findall(r"<script>(.*?)</script>", page.text, flags=re.S)
    assert len(forms) == 1, page.text
    assert scripts == [SCRIPT], page.text
    assert '<button type="submit">Continue</button>' in page.text
    return html.unescape(forms[0]), {k: html.unescape(v) for k, v in hidden_fields(page.text).items()}


def _assert_form_post_page(page: httpx.Response) -> None:
    assert page.status_code == 200, page.text
    assert "location" not in page.headers
    assert page.headers["content-security-policy"] == FORM_POST_CSP
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"


async def _signed_in(
    live: Live,  # noqa: F811 - the fixture's value
    browser: httpx.AsyncClient,
    spa: dict[str, Any],
    **asks: str,
) -> tuple[httpx.Response, str]:
    """A new user signs in for a request with `asks`: the consent page and the PKCE verifier."""
    username = "u" + uuid.uuid4().hex[:12]
    create_user(live.server, username)
    verifier, challenge = pkce()
    login = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge, **asks)))
    consent = await submit(browser, login, "/login", username=username, password=PASSWORD)
    assert 'action="/consent"' in consent.text, consent.text
    return consent, verifier


async def test_discovery_lists_query_and_form_post(live):  # noqa: F811
    """Both metadata documents list exactly query and form_post."""
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        assert live.http.get(path).json()["response_modes_supported"] == ["query", "form_post"]


async def test_form_post_delivers_the_code(live, browser):  # noqa: F811
    """After consent, and at /authorize for a session that has consented, the code arrives in a
    form that posts code, state and iss to the redirect URI; each code buys tokens."""
    spa = _spa(live)
    consent, verifier = await _signed_in(live, browser, spa, response_mode="form_post", state="st-consent")

    after_consent = await browser.post("/consent", data={**hidden_fields(consent.text), "decision": "approve"})
    again, challenge = pkce()
    params = authorize_params(spa, challenge, response_mode="form_post", state="st-again")
    at_authorize = await browser.get("/authorize", params=params)

    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        for page, state, code_verifier in ((after_consent, "st-consent", verifier), (at_authorize, "st-again", again)):
            _assert_form_post_page(page)
            action, fields = _form_post(page)
            assert action == CALLBACK
            assert set(fields) == {"code", "state", "iss"}
            assert (fields["state"], fields["iss"]) == (state, live.url)
            tokens = await exchange(http, spa, fields["code"], code_verifier)
            assert tokens.status_code == 200, tokens.text


async def test_form_post_delivers_the_denial(live, browser):  # noqa: F811
    """A denied consent reaches the client as access_denied by form_post."""
    spa = _spa(live)
    consent, _ = await _signed_in(live, browser, spa, response_mode="form_post", state="st-deny")

    page = await browser.post("/consent", data={**hidden_fields(consent.text), "decision": "deny"})

    _assert_form_post_page(page)
    denied = {"error": "access_denied", "error_description": "the user denied the request"}
    assert _form_post(page) == (CALLBACK, {**denied, "state": "st-deny", "iss": live.url})


@pytest.mark.parametrize(
    ("asks", "error", "description"),
    [
        pytest.param(
            {"code_challenge": None, "code_challenge_method": None},
            "invalid_request",
            "code_challenge is required (PKCE with S256, RFC 7636)",
            id="no-pkce",
        ),
        pytest.param(
            {"response_type": "token"},
            "unsupported_response_type",
            "response_type token is not supported; use response_type=code "
            "(Authorization Code with PKCE, RFC 9700 §2.1.2)",
            id="response-type-token",
        ),
        pytest.param({"prompt": "none"}, "login_required", "the user is not logged in", id="prompt-none-no-session"),
    ],
)
async def test_form_post_delivers_authorize_errors(live, asks, error, description):  # noqa: F811
    """An error found at /authorize, once the redirect URI is known good, is delivered by form_post."""
    spa = _spa(live)
    _, challenge = pkce()
    params = authorize_params(spa, challenge, response_mode="form_post", state="st-error", **asks)

    page = live.http.get("/authorize", params=params)

    _assert_form_post_page(page)
    expected = {"error": error, "error_description": description, "state": "st-error", "iss": live.url}
    assert _form_post(page) == (CALLBACK, expected)


@pytest.mark.parametrize(
    ("mode", "description"),
    [
        pytest.param(
            ["fragment"],
            "response_mode fragment is not supported for response_type=code; use query or form_post",
            id="fragment",
        ),
        pytest.param(["query.jwt"], "response_mode is not supported; use query or form_post", id="jarm"),
        pytest.param(["web_message"], "response_mode is not supported; use query or form_post", id="unknown"),
        pytest.param(["form_post", "query"], "parameter response_mode is repeated", id="repeated"),
    ],
)
async def test_unsupported_response_mode_is_invalid_request_in_the_query(live, mode, description):  # noqa: F811
    """fragment, an unknown mode or a repeated one is invalid_request, sent in the query with
    state and iss; nothing is stored and nobody is asked to log in."""
    spa = _spa(live)
    _, challenge = pkce()
    params = [*authorize_params(spa, challenge, state="st-mode").items(), *(("response_mode", m) for m in mode)]

    answer = live.http.get("/authorize", params=params)

    assert answer.status_code == 303
    assert "set-cookie" not in answer.headers
    expected = {"error": "invalid_request", "error_description": description, "state": "st-mode", "iss": live.url}
    assert answer.headers["location"] == f"{CALLBACK}?{urlencode(expected)}"


@pytest.mark.browser
async def test_chromium_posts_the_form_post_page_by_itself(live):  # noqa: F811
    """Chromium signs in and consents; the form_post page, under its own policy, runs its one
    script and posts code, state and iss to the redirect URI without a click."""
    chromium = _services.need_chromium()
    from playwright.async_api import async_playwright

    spa = _spa(live)
    username = "u" + uuid.uuid4().hex[:12]
    create_user(live.server, username)
    _, challenge = pkce()
    query = urlencode(authorize_params(spa, challenge, response_mode="form_post", state="st-chromium"))
    posted: list[tuple[str, str]] = []
    console: list[str] = []

    async with async_playwright() as playwright:
        chrome = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await (await chrome.new_context()).new_page()
            page.on("console", lambda message: console.append(message.text))

            async def callback(route: Any) -> None:
                posted.append((route.request.method, route.request.post_data or ""))
                await route.fulfill(status=200, content_type="text/html", body="<h1>callback</h1>")

            await page.route(CALLBACK + "*", callback)
            await page.goto(f"{live.url}/authorize?{query}")
            await page.fill("#username", username)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("button[value=approve]")
            await page.click("button[value=approve]")
            await page.wait_for_url(CALLBACK)
        finally:
            await chrome.close()

    assert len(posted) == 1, console
    method, body = posted[0]
    fields = {k: v[0] for k, v in parse_qs(body).items()}
    assert method == "POST"
    assert set(fields) == {"code", "state", "iss"}
    assert (fields["state"], fields["iss"]) == ("st-chromium", live.url)
    assert not [line for line in console if "Content Security Policy" in line]
