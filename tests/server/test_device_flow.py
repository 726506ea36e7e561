"""Device Authorization Grant (RFC 8628) in-process, on SQLite and PostgreSQL: the device
authorization endpoint, the verification pages, and polling at the token endpoint."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bastion.config import Settings
from bastion.protocol.rfc8628 import USER_CODE_ALPHABET
from bastion.server import create_app, open_context
from bastion.store.device_codes import DeviceCodeRow
from bastion.store.models import device_codes
from tests.conftest import make_settings, prepare
from tests.server._device import DEVICE_GRANT, enter_code, expire, poll, sign_in, start, started, verify
from tests.server._people import *  # noqa: F403 - fixtures (browser, make_user)
from tests.server._people import submit

pytestmark = pytest.mark.anyio

USER_CODE = re.compile(rf"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Cheap password hashing and a 1-second polling interval, so no test waits 5 s."""
    return make_settings(db_url, tmp_path, password_hashing="testing", device_poll_interval=1)


@pytest.fixture
async def tv(register: Any) -> dict[str, Any]:
    """A public device client allowed the device grant and refresh tokens."""
    return dict(
        await register(
            name="Living-room TV",
            grants=("device_code", "refresh_token"),
            scope=("openid", "profile", "offline_access", "read"),
            auth_method="none",
        )
    )


# The device authorization endpoint (RFC 8628 §3.1, §3.2)


async def test_device_authorization_response(http, tv):
    """The response carries a 256-bit device code, an XXXX-XXXX user code, both URIs, 600 s and the interval."""
    response = await start(http, tv)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert len(body["device_code"]) >= 43  # 32 bytes in URL-safe base64
    assert USER_CODE.fullmatch(body["user_code"])
    assert body["verification_uri"] == "http://127.0.0.1:8000/device"
    assert body["verification_uri_complete"] == f"http://127.0.0.1:8000/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600
    assert body["interval"] == 1


async def test_device_code_is_stored_only_as_a_hash(http, ctx, tv):
    """The database holds the SHA-256 of the device code, never the code; the user code is normalised."""
    body = await started(http, tv)

    async with ctx.database.engine.connect() as conn:
        rows = [DeviceCodeRow(*row) for row in await conn.execute(device_codes.select())]

    assert len(rows) == 1
    assert rows[0].device_code_hash == hashlib.sha256(body["device_code"].encode()).hexdigest()
    assert body["device_code"] not in repr(rows[0])
    assert rows[0].user_code == body["user_code"].replace("-", "")
    assert (rows[0].status, rows[0].scope, rows[0].interval) == ("pending", "openid profile offline_access read", 1)


async def test_confidential_client_authenticates(http, register):
    """A confidential client authenticates at the endpoint; a wrong secret is invalid_client."""
    client = await register(name="Kiosk", grants=("device_code",), scope=("read",))

    good = await start(http, client, scope="read")
    bad = await start(http, {**client, "client_secret": "wrong"}, scope="read")

    assert good.status_code == 200
    assert bad.status_code == 401
    assert bad.json() == {"error": "invalid_client", "error_description": "client authentication failed"}


@pytest.mark.parametrize(
    ("fields", "error", "description"),
    [
        pytest.param(
            {"scope": "write"}, "invalid_scope", "scope not allowed for this client: write", id="scope-not-allowed"
        ),
        pytest.param(
            {"scope": "read  openid"},
            "invalid_request",
            "scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)",
            id="scope-syntax",
        ),
    ],
)
async def test_device_authorization_rejects_bad_scope(http, tv, fields, error, description):
    """A scope the client may not have, or a malformed one, is refused with the exact error."""
    response = await start(http, tv, **fields)

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


async def test_client_without_the_grant_is_refused(http, register):
    """A client not registered for the device grant gets unauthorized_client at both endpoints."""
    client = await register(
        name="SPA",
        grants=("authorization_code",),
        scope=("openid",),
        auth_method="none",
        redirect_uris=("https://a.example/cb",),
    )

    started_response = await start(http, client, scope="openid")
    polled = await poll(http, client, "x" * 43)

    expected = {
        "error": "unauthorized_client",
        "error_description": f"this client may not use the {DEVICE_GRANT} grant",
    }
    assert (started_response.status_code, started_response.json()) == (400, expected)
    assert (polled.status_code, polled.json()) == (400, expected)


async def test_discovery_announces_the_device_endpoint(http):
    """Both discovery documents name the device authorization endpoint and the grant type."""
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        metadata = (await http.get(path)).json()

        assert metadata["device_authorization_endpoint"] == "http://127.0.0.1:8000/device_authorization"
        assert DEVICE_GRANT in metadata["grant_types_supported"]


# Polling (RFC 8628 §3.4, §3.5)


async def test_pending_then_slow_down_and_the_interval_grows(http, tv):
    """The first poll is pending; each poll sooner than the interval is slow_down with 5 s more."""
    device = await started(http, tv)

    first = await poll(http, tv, device["device_code"])
    second = await poll(http, tv, device["device_code"])
    third = await poll(http, tv, device["device_code"])

    assert (first.status_code, first.json()) == (
        400,
        {"error": "authorization_pending", "error_description": "the user has not yet approved the request"},
    )
    assert (second.status_code, second.json()) == (
        400,
        {"error": "slow_down", "error_description": "polling too fast; wait at least 6 seconds between requests"},
    )
    assert third.json() == {
        "error": "slow_down",
        "error_description": "polling too fast; wait at least 11 seconds between requests",
    }
    assert first.headers["cache-control"] == "no-store"


async def test_approved_code_yields_tokens_once(http, browser, tv, make_user):
    """After approval the poll returns access, refresh and ID tokens; the same code again is invalid_grant."""
    user = await make_user()
    device = await started(http, tv)

    done = await verify(browser, user, device["user_code"])
    tokens = await poll(http, tv, device["device_code"])
    again = await poll(http, tv, device["device_code"])

    assert done.status_code == 200
    assert "You allowed the device" in done.text
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "id_token", "refresh_token"}
    assert body["scope"] == "openid profile offline_access read"
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["aud"], claims["amr"]) == (user.sub, tv["client_id"], ["pwd"])
    assert "nonce" not in claims
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (access["sub"], access["client_id"], access["scope"]) == (user.sub, tv["client_id"], body["scope"])
    assert (again.status_code, again.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "the device code is invalid or was already used"},
    )


async def test_simultaneous_polls_issue_tokens_once(http, browser, tv, make_user):
    """Of two simultaneous polls of an approved code exactly one gets tokens; the other is refused."""
    user = await make_user()
    device = await started(http, tv)
    await verify(browser, user, device["user_code"])

    first, second = await asyncio.gather(poll(http, tv, device["device_code"]), poll(http, tv, device["device_code"]))

    statuses = sorted([first.status_code, second.status_code])
    refused = first if first.status_code == 400 else second
    assert statuses == [200, 400]
    assert refused.json()["error"] in {"slow_down", "invalid_grant"}


async def test_refresh_token_from_device_flow_works(http, browser, tv, make_user):
    """The refresh token issued to the device refreshes like any other."""
    user = await make_user()
    device = await started(http, tv)
    await verify(browser, user, device["user_code"])
    tokens = (await poll(http, tv, device["device_code"])).json()

    refreshed = await http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": tv["client_id"]},
    )

    assert refreshed.status_code == 200, refreshed.text


async def test_without_openid_no_id_token(http, browser, register, make_user):
    """Without `openid` (and without the refresh grant) only an access token is issued."""
    client = await register(name="CLI", grants=("device_code",), scope=("read",), auth_method="none")
    user = await make_user()
    device = await started(http, client, scope="read")
    await verify(browser, user, device["user_code"])

    body = (await poll(http, client, device["device_code"])).json()

    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}


async def test_denied_code_is_access_denied(http, browser, tv, make_user):
    """When the user denies, the poll answers access_denied."""
    user = await make_user()
    device = await started(http, tv)

    done = await verify(browser, user, device["user_code"], decision="deny")
    polled = await poll(http, tv, device["device_code"])

    assert "You denied the request" in done.text
    assert (polled.status_code, polled.json()) == (
        400,
        {"error": "access_denied", "error_description": "the user denied the request"},
    )


async def test_expired_code_is_expired_token(http, ctx, tv):
    """After the device code's lifetime the poll answers expired_token."""
    device = await started(http, tv)
    await expire(ctx, device["user_code"])

    polled = await poll(http, tv, device["device_code"])

    assert (polled.status_code, polled.json()) == (
        400,
        {
            "error": "expired_token",
            "error_description": "the device code has expired; start a new device authorization request",
        },
    )


async def test_device_code_is_bound_to_its_client(http, browser, tv, register, make_user):
    """Another client polling with an approved device code gets invalid_grant (RFC 8628 §3.4)."""
    other = await register(name="Other TV", grants=("device_code",), scope=("openid", "read"), auth_method="none")
    user = await make_user()
    device = await started(http, tv)
    await verify(browser, user, device["user_code"])

    stolen = await poll(http, other, device["device_code"])
    rightful = await poll(http, tv, device["device_code"])

    assert (stolen.status_code, stolen.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "the device code is invalid or was already used"},
    )
    assert rightful.status_code == 200


@pytest.mark.parametrize(
    ("data", "error", "description"),
    [
        pytest.param({}, "invalid_request", "parameter device_code is required", id="missing"),
        pytest.param(
            {"device_code": "not-a-device-code"},
            "invalid_grant",
            "the device code is invalid or was already used",
            id="unknown",
        ),
    ],
)
async def test_token_request_needs_a_known_device_code(http, tv, data, error, description):
    """A missing device_code is invalid_request; an unknown one invalid_grant."""
    response = await http.post("/token", data={"grant_type": DEVICE_GRANT, "client_id": tv["client_id"], **data})

    assert (response.status_code, response.json()) == (400, {"error": error, "error_description": description})


# The verification pages (RFC 8628 §3.3, §5.1, §5.4)


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(lambda code: code.lower(), id="lower-case"),
        pytest.param(lambda code: code.replace("-", ""), id="no-dash"),
        pytest.param(lambda code: " " + code.replace("-", " ").lower() + " ", id="spaces"),
        pytest.param(lambda code: code[:2] + "-" + code[2:5].replace("-", "") + "--" + code[5:], id="odd-dashes"),
    ],
)
async def test_typed_code_is_normalised(http, browser, tv, make_user, typed):
    """Case, dashes and spaces in what the user types do not matter."""
    await make_user()
    device = await started(http, tv)

    page = await enter_code(browser, device["user_code"], typed=typed(device["user_code"]))

    assert page.status_code == 200
    assert 'action="/login"' in page.text
    assert "Living-room TV" in page.text


async def test_consent_page_warns_names_client_scopes_and_code(http, browser, tv, make_user):
    """The device consent page names the client and scopes, shows the code and warns about phishing."""
    user = await make_user()
    device = await started(http, tv)

    page = await sign_in(browser, await enter_code(browser, device["user_code"]), user)

    assert page.status_code == 200
    assert 'action="/device/consent"' in page.text
    assert "<strong>Living-room TV</strong>" in page.text
    assert f'<code id="user-code">{device["user_code"]}</code>' in page.text
    assert "Only allow this if you started it yourself on a device you own" in page.text
    assert "Stay signed in and act for you while you are away" in page.text
    assert "Read your data" in page.text


async def test_prefilled_code_is_not_approved_without_a_click(http, browser, tv, make_user):
    """Following verification_uri_complete only pre-fills the form (RFC 8628 §5.4); nothing is decided."""
    await make_user()
    device = await started(http, tv)

    page = await browser.get("/device", params={"user_code": device["user_code"]})
    polled = await poll(http, tv, device["device_code"])

    assert f'value="{device["user_code"]}"' in page.text
    assert polled.json()["error"] == "authorization_pending"


@pytest.mark.parametrize(
    "case",
    ["unknown", "malformed", "expired", "already-approved"],
)
async def test_wrong_or_expired_user_code(http, browser, ctx, tv, make_user, case):
    """An unknown, malformed, expired or already used user code is refused and one attempt is spent."""
    user = await make_user()
    device = await started(http, tv)
    typed = {"unknown": "BBBB-BBBB", "malformed": "AEIOU-1234", "expired": device["user_code"]}.get(
        case, device["user_code"]
    )
    if case == "expired":
        await expire(ctx, device["user_code"])
    if case == "already-approved":
        await verify(browser, user, device["user_code"])

    page = await enter_code(browser, device["user_code"], typed=typed)

    assert page.status_code == 400
    assert "That code is not valid, or it has expired." in page.text
    assert '<p class="muted" id="attempts-remaining">9 attempts remaining.</p>' in page.text


async def test_page_shows_attempts_remaining_from_the_start(browser):
    """The code page says how many attempts remain before any was spent."""
    page = await browser.get("/device")

    assert page.status_code == 200
    assert '<p class="muted" id="attempts-remaining">10 attempts remaining.</p>' in page.text
    assert page.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"


async def test_guessing_hits_the_limit(http, browser, tv):
    """Ten wrong codes from one address exhaust the allowance: then even the right code gets 429,
    and the page gives the wait in seconds (at most the policy's 6-second spacing, 10 a minute)."""
    device = await started(http, tv)
    page = await browser.get("/device")
    remaining = []
    for _ in range(10):
        wrong = await submit(browser, page, "/device", user_code="BBBB-BBBB")
        remaining.append(re.search(r"(\d+) attempts? remaining", wrong.text).group(1))  # type: ignore[union-attr]

    refused = await submit(browser, page, "/device", user_code=device["user_code"])

    assert remaining == ["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]
    assert refused.status_code == 429
    message = r'<p class="error" role="alert">Too many wrong codes\. Try again in (\d) seconds?\.</p>'
    wait = re.search(message, refused.text)
    assert wait is not None, refused.text
    assert 1 <= int(wait.group(1)) <= 6
    assert '<p class="muted" id="attempts-remaining">0 attempts remaining.</p>' in refused.text


async def test_guessing_limit_follows_the_session_across_addresses(settings, ctx, browser, tv):
    """A session that spent its attempts is refused from another source address too."""
    page = await browser.get("/device")
    for _ in range(10):
        await submit(browser, page, "/device", user_code="BBBB-BBBB")
    app = create_app(settings, ctx)
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("192.0.2.7", 40000)),
        base_url=str(browser.base_url),
        cookies=browser.cookies,
    )
    newcomer = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("192.0.2.7", 40001)), base_url=str(browser.base_url)
    )
    async with elsewhere, newcomer:
        refused = await submit(elsewhere, page, "/device", user_code="CCCC-CCCC")
        fresh = await newcomer.get("/device")

    assert refused.status_code == 429
    assert '<p class="muted" id="attempts-remaining">10 attempts remaining.</p>' in fresh.text


async def test_policy_can_be_tuned_in_configuration(db_url, tmp_path):
    """`[ratelimit.policies.device_user_code_per_address]` sets the allowance the page counts down from."""
    tuned = make_settings(
        db_url,
        tmp_path / "tuned",
        password_hashing="testing",
        ratelimit={"policies": {"device_user_code_per_address": {"limit": "3/minute"}}},
    )
    await prepare(tuned)
    context = await open_context(tuned)
    transport = httpx.ASGITransport(app=create_app(tuned, context), client=("127.0.0.1", 50002))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1:8000") as client:
            page = await client.get("/device")
            for _ in range(3):
                await submit(client, page, "/device", user_code="BBBB-BBBB")
            refused = await submit(client, page, "/device", user_code="BBBB-BBBB")
    finally:
        await context.close()

    assert '<p class="muted" id="attempts-remaining">3 attempts remaining.</p>' in page.text
    assert refused.status_code == 429


@pytest.mark.parametrize(
    ("limit", "wait"),
    [
        pytest.param("2/10seconds", r"[1-5] seconds?", id="seconds"),
        pytest.param("1/10minutes", r"10 minutes", id="minutes"),
    ],
)
async def test_wait_is_said_in_seconds_under_a_minute(db_url, tmp_path, limit, wait):
    """Once wrong codes use up the allowance, the page gives the wait in seconds when it is under
    a minute (a 5-second wait is not "1 minute") and in minutes above."""
    tuned = make_settings(
        db_url,
        tmp_path / "tuned",
        password_hashing="testing",
        ratelimit={"policies": {"device_user_code_per_address": {"limit": limit}}},
    )
    await prepare(tuned)
    context = await open_context(tuned)
    transport = httpx.ASGITransport(app=create_app(tuned, context), client=("127.0.0.1", 50003))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1:8000") as client:
            page = await client.get("/device")
            wrong = [await submit(client, page, "/device", user_code="BBBB-BBBB") for _ in range(int(limit[0]))]
            refused = await submit(client, page, "/device", user_code="BBBB-BBBB")
    finally:
        await context.close()

    assert [answer.status_code for answer in wrong] == [400] * len(wrong)
    assert refused.status_code == 429
    message = rf'<p class="error" role="alert">Too many wrong codes\. Try again in {wait}\.</p>'
    assert re.search(message, refused.text), refused.text


async def test_code_form_needs_the_csrf_token(browser, http, tv):
    """A code submitted without the session's CSRF token is refused with 403."""
    device = await started(http, tv)
    await browser.get("/device")

    response = await browser.post("/device", data={"user_code": device["user_code"]})

    assert response.status_code == 403


async def test_mfa_user_signs_in_with_totp_before_consent(http, browser, tv, make_user):
    """A user who must use MFA enrols TOTP on the way; the ID token says amr pwd, otp, mfa."""
    user = await make_user(roles=("admin",))
    device = await started(http, tv)

    done = await verify(browser, user, device["user_code"])
    body = (await poll(http, tv, device["device_code"])).json()

    assert "You allowed the device" in done.text
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert (claims["amr"], claims["acr"]) == (["pwd", "otp", "mfa"], "urn:bastion:acr:mfa")


async def test_signed_in_user_goes_straight_to_consent(http, browser, tv, make_user):
    """A browser that is already signed in skips the login page."""
    user = await make_user()
    first = await started(http, tv)
    await verify(browser, user, first["user_code"])
    second = await started(http, tv)

    page = await enter_code(browser, second["user_code"])

    assert 'action="/device/consent"' in page.text


async def test_consent_decision_needs_a_live_code(http, browser, ctx, tv, make_user):
    """If the code expires while the consent page is open, Allow changes nothing and the poll says expired."""
    user = await make_user()
    device = await started(http, tv)
    page = await sign_in(browser, await enter_code(browser, device["user_code"]), user)
    await expire(ctx, device["user_code"])

    done = await submit(browser, page, "/device/consent", decision="approve")
    polled = await poll(http, tv, device["device_code"])

    assert "This code has expired or was already used." in done.text
    assert polled.json()["error"] == "expired_token"
