"""The verification pages of the Device Authorization Grant (RFC 8628 §3.3): `/device`.

A person types (or follows a link with) the user code. A valid code becomes a pending request
in the browser session, like an authorization request, so the same login, second factor and
session machinery signs the person in; `advance` then brings them to the device consent page,
which names the client and the scopes and warns them to approve only a code they started
themselves (§5.4). Nothing is approved without that explicit click, even with
`verification_uri_complete` (§3.3.1), and an approval is never remembered as consent for the
next device code: each one is a new device in someone's hands.

Wrong codes are throttled per source address and per browser session through the
`device_user_code_per_address` policy (§5.1); the page says how many attempts remain.
"""

from __future__ import annotations

import math
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import sessions, users
from bastion.identity.users import User
from bastion.protocol.rfc6749.params import check_content_type, parse_form, single
from bastion.protocol.rfc8628 import format_user_code, normalize_user_code
from bastion.ratelimit import Decision
from bastion.server.audit import audit
from bastion.server.browser import BrowserSession, load_session, start_session
from bastion.server.context import ServerContext
from bastion.server.endpoints.authorize import advance, pending_request
from bastion.server.endpoints.interaction import scope_words
from bastion.server.issuance import acr_for
from bastion.server.pages import PAGE_HEADERS, error_page, render
from bastion.server.responses import read_body
from bastion.store import device_codes, pending_requests, transaction
from bastion.store.device_codes import DeviceCodeRow
from bastion.store.pending_requests import AuthorizationRequestRow

_WRONG_CODE = "That code is not valid, or it has expired. Check the code on your device."
_EXPIRED = "This code has expired or was already used. Start again on your device."
_PHISHING_WARNING = (
    "Only allow this if you started it yourself on a device you own, and that device shows the "
    "code {code}. If someone sent you this code or link, deny: they are trying to get into your account."
)
_TYPED_MAX = 32


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, list[str]]:
    check_content_type(request.headers.get("content-type"))
    return parse_form(await read_body(request))


def _csrf_failure() -> Response:
    return error_page("Form expired", "The form was not valid (missing or wrong CSRF token). Go back and retry.", 403)


def _throttled_message(refusal: Decision) -> str:
    minutes = max(1, math.ceil(refusal.retry_after / 60))
    return f"Too many wrong codes. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def _code_page(
    browser: BrowserSession,
    *,
    user_code: str = "",
    remaining: int | None = None,
    message: str = "",
    status: int = 200,
) -> Response:
    return render(
        "device.html",
        status,
        title="Connect a device",
        csrf_token=browser.csrf_token,
        user_code=user_code,
        remaining=remaining,
        message=message,
    )


def _prefill(typed: str | None) -> str:
    if not typed:
        return ""
    code = normalize_user_code(typed)
    return format_user_code(code) if code is not None else typed[:_TYPED_MAX]


async def device_page(request: Request) -> Response:
    """`GET /device[?user_code=...]`: the code entry form, pre-filled from the link if any."""
    ctx: ServerContext = request.app.state.ctx
    browser = await load_session(ctx, request)
    cookies = Response()
    if browser is None:
        browser = await start_session(ctx, cookies, None)
    remaining = None
    if ctx.limits is not None:
        decision = await ctx.limits.check_user_code(browser.sid, _source(request))
        remaining = decision.remaining if decision is not None else None
    page = _code_page(browser, user_code=_prefill(request.query_params.get("user_code")), remaining=remaining)
    for cookie in cookies.headers.getlist("set-cookie"):
        page.headers.append("set-cookie", cookie)
    return page


async def _start_request(ctx: ServerContext, browser: BrowserSession, row: DeviceCodeRow) -> str:
    """A pending request of the device kind in this session, for the device code."""
    request_id = secrets.token_urlsafe(24)
    now = int(time.time())
    pending = AuthorizationRequestRow(
        id=request_id,
        session_hash=browser.id_hash,
        client_id=row.client_id,
        redirect_uri="",
        scope=row.scope,
        state=None,
        nonce=None,
        code_challenge=None,
        prompt="",
        max_age=None,
        login_hint=None,
        created_at=now,
        expires_at=min(row.expires_at, now + ctx.settings.session_idle_lifetime),
        acr_values=None,
        kind=pending_requests.DEVICE,
        user_code=row.user_code,
    )
    await pending_requests.insert(ctx.database, pending)
    return request_id


async def device_submit(request: Request) -> Response:
    """`POST /device`: check the typed code (throttled), then sign in and consent via `advance`."""
    ctx: ServerContext = request.app.state.ctx
    form = await _form(request)
    browser = await load_session(ctx, request)
    if browser is None:
        return error_page("Session expired", "Your session has expired. Reload the page and enter the code again.")
    if not sessions.csrf_matches(browser.csrf_token, single(form, "csrf_token")):
        return _csrf_failure()
    typed = single(form, "user_code") or ""
    source = _source(request)
    limits = ctx.limits
    if limits is not None:
        refusal = await limits.check_user_code(browser.sid, source)
        if refusal is not None and not refusal.allowed:
            audit("device_user_code_throttled", source=source)
            return _code_page(browser, remaining=0, message=_throttled_message(refusal), status=429)
    code = normalize_user_code(typed)
    row = None
    if code is not None:
        row = await device_codes.pending_by_user_code(ctx.database, code, int(time.time()))
    client = await ctx.clients.get(row.client_id) if row is not None else None
    if row is None or client is None or not client.enabled:
        after = await limits.record_user_code_failure(browser.sid, source) if limits is not None else None
        audit("device_user_code_failed", source=source)
        remaining = after.remaining if after is not None else None
        return _code_page(browser, user_code=typed[:_TYPED_MAX], remaining=remaining, message=_WRONG_CODE, status=400)
    request_id = await _start_request(ctx, browser, row)
    return await advance(ctx, browser, request_id, Response(status_code=303, headers=dict(PAGE_HEADERS)))


async def _consent_context(
    ctx: ServerContext, request: Request, request_id: str | None
) -> tuple[BrowserSession, AuthorizationRequestRow, User, DeviceCodeRow] | None:
    browser = await load_session(ctx, request)
    if browser is None or not request_id or not browser.authenticated or browser.sub is None:
        return None
    pending = await pending_request(ctx, browser, request_id)
    if pending is None or pending.kind != pending_requests.DEVICE or pending.user_code is None:
        return None
    user = await users.get_user(ctx.database, browser.sub)
    if user is None or not user.enabled:
        return None
    row = await device_codes.pending_by_user_code(ctx.database, pending.user_code, int(time.time()))
    if row is None or row.client_id != pending.client_id:
        return None
    return browser, pending, user, row


async def device_consent_page(request: Request) -> Response:
    """`GET /device/consent?request=ID`: the consent page with the anti-phishing warning (§5.4)."""
    ctx: ServerContext = request.app.state.ctx
    found = await _consent_context(ctx, request, request.query_params.get("request"))
    if found is None:
        return error_page("Code expired", _EXPIRED)
    browser, pending, user, row = found
    client = await ctx.clients.get(row.client_id)
    user_code = format_user_code(row.user_code)
    return render(
        "consent.html",
        title="Allow this device?",
        client_name=client.name if client is not None else row.client_id,
        scopes=scope_words(row.scope),
        username=user.username,
        csrf_token=browser.csrf_token,
        request_id=pending.id,
        action="/device/consent",
        user_code=user_code,
        warning=_PHISHING_WARNING.format(code=user_code),
    )


async def device_consent_submit(request: Request) -> Response:
    """`POST /device/consent`: record Allow or Deny on the device code; the device's poll sees it."""
    ctx: ServerContext = request.app.state.ctx
    form = await _form(request)
    found = await _consent_context(ctx, request, single(form, "request"))
    if found is None:
        return error_page("Code expired", _EXPIRED)
    browser, pending, user, row = found
    if not sessions.csrf_matches(browser.csrf_token, single(form, "csrf_token")):
        return _csrf_failure()
    decision = single(form, "decision")
    if decision not in ("approve", "deny"):
        return error_page("Invalid request", "Choose Allow or Deny.")
    now = int(time.time())
    async with transaction(ctx.database) as tx:
        if decision == "approve":
            if browser.auth_time is None:  # pragma: no cover - authenticated sessions have it
                return error_page("Not signed in", "Sign in again.")
            done = await device_codes.approve(
                tx,
                row.user_code,
                sub=user.sub,
                sid=browser.sid,
                auth_time=browser.auth_time,
                amr=" ".join(browser.amr),
                acr=acr_for(browser.amr),
                now=now,
            )
        else:
            done = await device_codes.deny(tx, row.user_code, sub=user.sub, now=now)
        await pending_requests.end(tx, pending.id)
    if not done:
        return error_page("Code expired", _EXPIRED)
    audit(f"device_{'approved' if decision == 'approve' else 'denied'}", sub=user.sub, client_id=row.client_id)
    if decision == "deny":
        return render(
            "device_done.html",
            title="Request denied",
            message="You denied the request. The device gets no access. You can close this page.",
        )
    return render(
        "device_done.html",
        title="Device connected",
        message="You allowed the device. Return to it: it continues on its own. You can close this page.",
    )


__all__ = ["device_consent_page", "device_consent_submit", "device_page", "device_submit"]
