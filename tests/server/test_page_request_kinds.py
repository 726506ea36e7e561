"""A page serves only the kind of pending request it declares, through a real `bastion serve` on
SQLite and PostgreSQL: the id of a device request at `/consent`, or of an authorization request
at `/device/consent`, is answered exactly as an unknown request is, and nothing is issued or
approved; each request still finishes on its own page afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests._live import LiveServer, keep_session_cookie
from tests.server._device import poll, started
from tests.server._people import CALLBACK, authorize_params, follow, hidden_fields, pkce, submit
from tests.server.test_browser_flow import PASSWORD, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.server]


@dataclass
class TwoRequests:
    """One signed-in browser session holding an authorization request on its consent page and a
    device request on the device consent page."""

    server: LiveServer
    browser: httpx.AsyncClient
    http: httpx.AsyncClient
    spa: dict[str, Any]
    tv: dict[str, Any]
    consent: httpx.Response
    device_consent: httpx.Response
    device_code: str

    def form(self, page: httpx.Response, **fields: str) -> dict[str, str]:
        return {**hidden_fields(page.text), **fields}

    def request_id(self, page: httpx.Response) -> str:
        return hidden_fields(page.text)["request"]

    def audit_events(self) -> list[str]:
        lines = self.server.log.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [record["event"] for record in records if record.get("audit")]


@pytest.fixture
async def two_requests(live_server: LiveServer) -> AsyncIterator[TwoRequests]:
    create_user(live_server, "alice")
    spa = live_server.create_client(
        "--name", "Example SPA", "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", "openid profile email offline_access",
    )  # fmt: skip
    tv = live_server.create_client(
        "--name", "Living-room TV", "--grant", "device_code", "--auth-method", "none",
        "--scope", "openid profile offline_access read",
    )  # fmt: skip
    async with (
        httpx.AsyncClient(base_url=live_server.url) as browser,
        httpx.AsyncClient(base_url=live_server.url) as http,
    ):
        browser.event_hooks["response"] = [keep_session_cookie(browser)]
        _, challenge = pkce()
        login = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))
        consent = await submit(browser, login, "/login", username="alice", password=PASSWORD)
        device = await started(http, tv)
        code_entry = await browser.get("/device")
        device_consent = await submit(browser, code_entry, "/device", user_code=device["user_code"])
        assert 'action="/consent"' in consent.text, consent.text
        assert 'action="/device/consent"' in device_consent.text, device_consent.text
        yield TwoRequests(live_server, browser, http, spa, tv, consent, device_consent, device["device_code"])


async def test_device_request_at_consent_is_unknown(two_requests):
    """A device request's id shown or posted to /consent gets the expired page of an unknown
    request; no code is issued and the device is still waiting, then approved on its own page."""
    flows = two_requests
    device_request = flows.request_id(flows.device_consent)
    unknown = await flows.browser.post(
        "/consent", data=flows.form(flows.consent, request="unknown", decision="approve")
    )

    shown = await flows.browser.get(f"/consent?request={device_request}")
    posted = await flows.browser.post(
        "/consent", data=flows.form(flows.consent, request=device_request, decision="approve")
    )
    polled = await poll(flows.http, flows.tv, flows.device_code)

    assert unknown.status_code == 400
    assert "Session expired" in unknown.text
    for answer in (shown, posted):
        assert (answer.status_code, answer.text) == (unknown.status_code, unknown.text)
        assert "location" not in answer.headers
    assert "authorization_code_issued" not in flows.audit_events()
    assert polled.json()["error"] == "authorization_pending"
    approved = await submit(flows.browser, flows.device_consent, "/device/consent", decision="approve")
    assert "You allowed the device." in approved.text


async def test_authorization_request_at_device_consent_is_unknown(two_requests):
    """An authorization request's id shown or posted to /device/consent gets the expired page of
    an unknown request; nothing is approved, and the request still gets its code at /consent."""
    flows = two_requests
    authorization_request = flows.request_id(flows.consent)
    unknown = await flows.browser.post(
        "/device/consent", data=flows.form(flows.device_consent, request="unknown", decision="approve")
    )

    shown = await flows.browser.get(f"/device/consent?request={authorization_request}")
    posted = await flows.browser.post(
        "/device/consent", data=flows.form(flows.device_consent, request=authorization_request, decision="approve")
    )

    assert unknown.status_code == 400
    assert "Code expired" in unknown.text
    for answer in (shown, posted):
        assert (answer.status_code, answer.text) == (unknown.status_code, unknown.text)
    assert "device_approved" not in flows.audit_events()
    issued = await flows.browser.post("/consent", data=flows.form(flows.consent, decision="approve"))
    assert issued.status_code == 303
    assert issued.headers["location"].startswith(CALLBACK + "?code=")
