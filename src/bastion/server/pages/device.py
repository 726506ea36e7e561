"""The verification pages of the Device Authorization Grant (RFC 8628 §3.3): `/device`.

A person types (or follows a link with) the user code. A valid code becomes a pending request
of the device kind in the browser session, so the same login, second factor and session
machinery signs the person in; the flow engine then brings them to the device consent page,
which names the client and the scopes and warns them to approve only a code they started
themselves (§5.4). Nothing is approved without that explicit click, even with
`verification_uri_complete` (§3.3.1), and an approval is never remembered as consent for the
next device code: each one is a new device in someone's hands.

Wrong codes are throttled per source address and per browser session through the
`device_user_code_per_address` policy (§5.1); the page says how many attempts remain.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from bastion.events import audit
from bastion.identity import sessions
from bastion.protocol.rfc8628 import format_user_code, normalize_user_code
from bastion.server import flow
from bastion.server.browser import BrowserSession, anonymous_session, load_session
from bastion.server.context import ServerContext
from bastion.server.pages import error_page, render, throttled_message, too_many_requests_page
from bastion.server.pages.consent import consent_form
from bastion.server.pages.step import Needs, Page, enabled, source_of, with_page
from bastion.store import device_codes, pending_requests
from bastion.store.device_codes import DeviceCodeRow
from bastion.store.pending_requests import DEVICE, AuthorizationRequestRow

_WRONG_CODE = "That code is not valid, or it has expired. Check the code on your device."
_PHISHING_WARNING = (
    "Only allow this if you started it yourself on a device you own, and that device shows the "
    "code {code}. If someone sent you this code or link, deny: they are trying to get into your account."
)
_TYPED_MAX = 32
_DECIDED = {
    True: (
        "Device connected",
        "You allowed the device. Return to it: it continues on its own. You can close this page.",
    ),
    False: ("Request denied", "You denied the request. The device gets no access. You can close this page."),
}

code_expired = partial(
    error_page, "Code expired", "This code has expired or was already used. Start again on your device."
)
CODE_ENTRY = Needs(
    post=True,
    anonymous=True,
    expired=partial(
        error_page, "Session expired", "Your session has expired. Reload the page and enter the code again."
    ),
)
DEVICE_CONSENT = Needs(stage=sessions.AUTHENTICATED, kinds=frozenset({DEVICE}), user=enabled, expired=code_expired)


def _code_form(
    browser: BrowserSession, *, user_code: str = "", remaining: int | None = None, message: str = "", status: int = 200
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
    """`GET /device[?user_code=...]`: the code entry form, pre-filled from the link if any, in
    the browser's session (a provisional one for a browser that has none: nothing is stored)."""
    ctx: ServerContext = request.app.state.ctx
    cookies = Response()
    browser = await load_session(ctx, request) or anonymous_session(ctx, request, cookies)
    decision = await ctx.limits.check_user_code(browser.sid, source_of(request))
    remaining = decision.remaining if decision is not None else None
    form = _code_form(browser, user_code=_prefill(request.query_params.get("user_code")), remaining=remaining)
    for cookie in cookies.headers.getlist("set-cookie"):
        form.headers.append("set-cookie", cookie)
    return form


@with_page(CODE_ENTRY)
async def device_submit(page: Page) -> Response:
    """`POST /device`: check the typed code (throttled), then sign in and consent via the flow."""
    ctx, browser, source = page.ctx, page.browser, page.source
    typed = page.field("user_code") or ""
    refusal = await ctx.limits.check_user_code(browser.sid, source)
    if refusal is not None and not refusal.allowed:
        audit("device_user_code_throttled", source=source)
        message = throttled_message("Too many wrong codes.", refusal.retry_after)
        return _code_form(browser, remaining=0, message=message, status=429)
    code = normalize_user_code(typed)
    row = await device_codes.pending_by_user_code(ctx.database, code, int(time.time())) if code is not None else None
    client = await ctx.clients.get(row.client_id) if row is not None else None
    if row is None or client is None or not client.enabled:
        after = await ctx.limits.record_user_code_failure(browser.sid, source)
        audit("device_user_code_failed", source=source)
        remaining = after.remaining if after is not None else None
        return _code_form(browser, user_code=typed[:_TYPED_MAX], remaining=remaining, message=_WRONG_CODE, status=400)
    if not browser.stored:
        refusal = await ctx.limits.admit_anonymous(source)
        if refusal is not None:
            return too_many_requests_page(refusal)
    pending = _device_request(ctx, browser, row)
    await pending_requests.insert(ctx.database, pending)
    return await flow.advance(ctx, browser, pending)


def _device_request(ctx: ServerContext, browser: BrowserSession, row: DeviceCodeRow) -> AuthorizationRequestRow:
    """A pending request of the device kind in this session, for the device code."""
    now = int(time.time())
    return AuthorizationRequestRow(
        id=secrets.token_urlsafe(24),
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
        kind=DEVICE,
        user_code=row.user_code,
    )


async def _device_code(page: Page) -> DeviceCodeRow | None:
    """The live, undecided device code of the page's request, for the same client."""
    user_code = page.pending.user_code
    if user_code is None:
        return None
    row = await device_codes.pending_by_user_code(page.ctx.database, user_code, int(time.time()))
    return row if row is not None and row.client_id == page.pending.client_id else None


@with_page(DEVICE_CONSENT)
async def device_consent_page(page: Page) -> Response:
    """`GET /device/consent?request=ID`: the consent page with the anti-phishing warning (§5.4)."""
    row = await _device_code(page)
    if row is None:
        return code_expired()
    # The form only for a session that may then approve the device; else the step it needs.
    finish = await flow.check_finish(page.ctx, page.browser, page.pending)
    if isinstance(finish, Response):
        return finish
    user_code = format_user_code(row.user_code)
    warning = _PHISHING_WARNING.format(code=user_code)
    return await consent_form(
        page, "Allow this device?", action="/device/consent", user_code=user_code, warning=warning
    )


@with_page(replace(DEVICE_CONSENT, post=True, decision=True))
async def device_consent_submit(page: Page) -> Response:
    """`POST /device/consent`: record Allow or Deny on the device code; the device's poll sees it."""
    row = await _device_code(page)
    if row is None:
        return code_expired()
    ctx, user = page.ctx, page.user
    if page.approved:
        finish = await flow.check_finish(ctx, page.browser, page.pending)
        if isinstance(finish, Response):
            return finish
        done = await flow.approve_device(ctx, finish, row.user_code)
    else:
        done = await flow.deny_device(ctx, page.pending, row.user_code, sub=user.sub)
    if not done:
        return code_expired()
    audit(f"device_{'approved' if page.approved else 'denied'}", sub=user.sub, client_id=row.client_id)
    title, message = _DECIDED[page.approved]
    return render("device_done.html", title=title, message=message)


__all__ = [
    "CODE_ENTRY",
    "DEVICE_CONSENT",
    "device_consent_page",
    "device_consent_submit",
    "device_page",
    "device_submit",
]
