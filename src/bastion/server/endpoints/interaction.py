"""The pages a person sees during an authorization request: login, second factor (with TOTP
enrolment), and consent. Every form carries the session's CSRF token; every post answers 303.

Failed logins (password or second factor) are throttled per account name and per source address
through the `login_failures_per_account_burst`, `login_failures_per_account` and
`login_failures_per_address` policies (delays that grow with the failures, then a temporary lock);
the page says how long to wait without revealing whether the account exists.
"""

from __future__ import annotations

import base64
import binascii
import math
import time

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import recovery, sessions, totp, users
from bastion.identity.users import User
from bastion.protocol.errors import AccessDenied
from bastion.protocol.rfc6749.params import check_content_type, parse_form, single
from bastion.server.audit import audit
from bastion.server.browser import BrowserSession, load_session_and_request, people, start_session
from bastion.server.context import ServerContext
from bastion.server.endpoints.authorize import advance, deny, issue_code, requires_mfa, see_other
from bastion.server.pages import error_page, render
from bastion.server.responses import read_body
from bastion.store.pending_requests import AuthorizationRequestRow

# The consent page names each scope in plain words.
SCOPE_WORDS = {
    "openid": "Confirm who you are (your account identifier)",
    "profile": "See your name and profile details",
    "email": "See your email address",
    "offline_access": "Stay signed in and act for you while you are away",
    "roles": "See the roles your account has",
    "read": "Read your data",
    "write": "Change your data",
}
_EXPIRED = "Your session has expired. Return to the application and start again."


def scope_words(scope: str) -> list[str]:
    return [SCOPE_WORDS.get(s, f"Use the permission “{s}”") for s in scope.split()]


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, list[str]]:
    check_content_type(request.headers.get("content-type"))
    return parse_form(await read_body(request))


async def _client_name(ctx: ServerContext, client_id: str) -> str:
    client = await ctx.clients.get(client_id)
    return client.name if client is not None else client_id


def _csrf_ok(browser: BrowserSession, form: dict[str, list[str]]) -> bool:
    return sessions.csrf_matches(browser.csrf_token, single(form, "csrf_token"))


def _csrf_failure() -> Response:
    return error_page("Form expired", "The form was not valid (missing or wrong CSRF token). Go back and retry.", 403)


# Login


def _login_page(
    browser: BrowserSession, pending: AuthorizationRequestRow, client_name: str, *, message: str = "", status: int = 200
) -> Response:
    return render(
        "login.html",
        status,
        title="Sign in",
        client_name=client_name,
        csrf_token=browser.csrf_token,
        request_id=pending.id,
        username=pending.login_hint or "",
        message=message,
    )


async def login_page(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    browser, pending = await load_session_and_request(ctx, request, request.query_params.get("request"))
    if browser is None or pending is None:
        return error_page("Session expired", _EXPIRED)
    return _login_page(browser, pending, await _client_name(ctx, pending.client_id))


def _throttled_message(retry_after: float) -> str:
    if retry_after < 60:
        seconds = max(1, math.ceil(retry_after))
        return f"Too many failed sign-in attempts. Try again in {seconds} second{'s' if seconds > 1 else ''}."
    minutes = math.ceil(retry_after / 60)
    return f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


async def login_submit(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    form = await _form(request)
    browser, pending = await load_session_and_request(ctx, request, single(form, "request"))
    if browser is None or pending is None:
        return error_page("Session expired", _EXPIRED)
    if not _csrf_ok(browser, form):
        return _csrf_failure()
    client_name = await _client_name(ctx, pending.client_id)
    username = (single(form, "username") or "").strip()
    password = single(form, "password") or ""
    limits = ctx.limits
    source = _source(request)
    if limits is not None:
        refusal = await limits.check_login(username, source)
        if refusal is not None:
            audit("login_throttled", username_hash=sessions.hash_session_id(username.lower())[:12])
            return _login_page(
                browser, pending, client_name, message=_throttled_message(refusal.retry_after), status=429
            )
    user = await users.find_user(ctx.database, username) if username else None
    verdict = await people(ctx).passwords.verify(user.password_hash if user is not None else None, password)
    if user is None or not verdict.matched or not user.enabled or user.username != username:
        if limits is not None:
            await limits.record_login_failure(username, source)
        audit("login_failed", sub=user.sub if user is not None else None)
        return _login_page(browser, pending, client_name, message="Wrong username or password.", status=400)
    if verdict.new_hash is not None:
        # Parameters changed since this hash was made: store one at the current parameters.
        await users.store_password_hash(ctx.database, user.sub, verdict.new_hash)
        audit("password_rehashed", sub=user.sub)
    now = int(time.time())
    response = see_other(f"/authorize/resume?request={pending.id}")
    if user.mfa_required or requires_mfa(pending):
        await start_session(ctx, response, browser, sub=user.sub, stage=sessions.PASSWORD, amr=("pwd",))
        response.headers["location"] = f"/{'login/mfa' if user.mfa_enrolled else 'mfa/enrol'}?request={pending.id}"
    else:
        await start_session(
            ctx,
            response,
            browser,
            sub=user.sub,
            stage=sessions.AUTHENTICATED,
            amr=("pwd",),
            auth_time=now,
            satisfied=pending,
        )
    audit("login_succeeded", sub=user.sub, stage="password")
    return response


# Second factor


async def _second_factor_context(
    ctx: ServerContext, request: Request, request_id: str | None
) -> tuple[BrowserSession, AuthorizationRequestRow, User] | None:
    browser, pending = await load_session_and_request(ctx, request, request_id)
    if browser is None or pending is None or browser.stage != sessions.PASSWORD or browser.sub is None:
        return None
    user = await users.get_user(ctx.database, browser.sub)
    if user is None or not user.enabled:
        return None
    return browser, pending, user


def _mfa_page(
    browser: BrowserSession, pending: AuthorizationRequestRow, *, message: str = "", status: int = 200
) -> Response:
    return render(
        "mfa.html",
        status,
        title="Two-step verification",
        csrf_token=browser.csrf_token,
        request_id=pending.id,
        message=message,
    )


async def mfa_page(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    found = await _second_factor_context(ctx, request, request.query_params.get("request"))
    if found is None:
        return error_page("Session expired", _EXPIRED)
    browser, pending, _user = found
    return _mfa_page(browser, pending)


async def _complete_login(
    ctx: ServerContext, browser: BrowserSession, pending: AuthorizationRequestRow, user: User, amr: tuple[str, ...]
) -> Response:
    response = see_other(f"/authorize/resume?request={pending.id}")
    await start_session(
        ctx,
        response,
        browser,
        sub=user.sub,
        stage=sessions.AUTHENTICATED,
        amr=amr,
        auth_time=int(time.time()),
        satisfied=pending,
    )
    audit("login_succeeded", sub=user.sub, stage="second_factor", amr=" ".join(amr))
    return response


async def _check_second_factor(ctx: ServerContext, user: User, code: str) -> tuple[str, ...] | None:
    secret = users.decrypt_totp_secret(people(ctx).encryptor, user)
    if secret is not None:
        step = totp.matching_step(secret, code, last_step=user.totp_last_step)
        if step is not None and await users.use_totp_step(ctx.database, user.sub, step):
            return ("pwd", "otp", "mfa")
    if recovery.looks_like_recovery_code(code) and await users.use_recovery_code(ctx.database, user.sub, code):
        audit("recovery_code_used", sub=user.sub)
        return ("pwd", "mfa")
    return None


async def mfa_submit(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    form = await _form(request)
    found = await _second_factor_context(ctx, request, single(form, "request"))
    if found is None:
        return error_page("Session expired", _EXPIRED)
    browser, pending, user = found
    if not _csrf_ok(browser, form):
        return _csrf_failure()
    source = _source(request)
    if ctx.limits is not None:
        refusal = await ctx.limits.check_login(user.username, source)
        if refusal is not None:
            return _mfa_page(browser, pending, message=_throttled_message(refusal.retry_after), status=429)
    amr = await _check_second_factor(ctx, user, single(form, "code") or "")
    if amr is None:
        if ctx.limits is not None:
            await ctx.limits.record_login_failure(user.username, source)
        audit("second_factor_failed", sub=user.sub)
        return _mfa_page(browser, pending, message="That code is not valid (or was already used).", status=400)
    return await _complete_login(ctx, browser, pending, user, amr)


# TOTP enrolment: the new secret travels in the form, encrypted under the key-encryption key and
# bound to this session's `sid`, until a code from it proves the authenticator has it.


def _seal(ctx: ServerContext, browser: BrowserSession, secret: str) -> str:
    blob = people(ctx).encryptor.encrypt(secret.encode(), f"enrol:{browser.sid}")
    return base64.urlsafe_b64encode(blob).decode()


def _unseal(ctx: ServerContext, browser: BrowserSession, sealed: str | None) -> str | None:
    if not sealed:
        return None
    try:
        return people(ctx).encryptor.decrypt(base64.urlsafe_b64decode(sealed), f"enrol:{browser.sid}").decode()
    except (ValueError, binascii.Error):
        return None


def _enrol_page(
    ctx: ServerContext,
    browser: BrowserSession,
    pending: AuthorizationRequestRow,
    user: User,
    secret: str,
    *,
    message: str = "",
    status: int = 200,
) -> Response:
    uri = totp.provisioning_uri(secret, user.username, "Bastion")
    return render(
        "enrol.html",
        status,
        title="Set up two-step verification",
        csrf_token=browser.csrf_token,
        request_id=pending.id,
        qr_svg=totp.qr_svg(uri),
        secret=secret,
        enrolment=_seal(ctx, browser, secret),
        message=message,
    )


async def enrol_page(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    found = await _second_factor_context(ctx, request, request.query_params.get("request"))
    if found is None or found[2].mfa_enrolled:
        return error_page("Session expired", _EXPIRED)
    browser, pending, user = found
    return _enrol_page(ctx, browser, pending, user, totp.generate_secret())


async def enrol_submit(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    form = await _form(request)
    found = await _second_factor_context(ctx, request, single(form, "request"))
    if found is None or found[2].mfa_enrolled:
        return error_page("Session expired", _EXPIRED)
    browser, pending, user = found
    if not _csrf_ok(browser, form):
        return _csrf_failure()
    secret = _unseal(ctx, browser, single(form, "enrolment"))
    if secret is None:
        return error_page("Form expired", "The enrolment form was altered or has expired. Sign in again.", 400)
    step = totp.matching_step(secret, single(form, "code") or "")
    if step is None:
        return _enrol_page(
            ctx, browser, pending, user, secret, message="That code is not valid; try the next one.", status=400
        )
    try:
        codes = await users.enrol_totp(ctx.database, people(ctx).encryptor, user.sub, secret, step)
    except users.UserError:
        return error_page("Already enrolled", "A second factor is already set up for this account. Sign in again.")
    audit("totp_enrolled", sub=user.sub)
    response = render("recovery_codes.html", title="Save your recovery codes", codes=codes, request_id=pending.id)
    await start_session(
        ctx,
        response,
        browser,
        sub=user.sub,
        stage=sessions.AUTHENTICATED,
        amr=("pwd", "otp", "mfa"),
        auth_time=int(time.time()),
        satisfied=pending,
    )
    return response


# Consent


async def _consent_context(
    ctx: ServerContext, request: Request, request_id: str | None
) -> tuple[BrowserSession, AuthorizationRequestRow, User] | None:
    browser, pending = await load_session_and_request(ctx, request, request_id)
    if browser is None or pending is None or not browser.authenticated or browser.sub is None:
        return None
    user = await users.get_user(ctx.database, browser.sub)
    if user is None or not user.enabled:
        return None
    return browser, pending, user


async def consent_page(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    found = await _consent_context(ctx, request, request.query_params.get("request"))
    if found is None:
        return error_page("Session expired", _EXPIRED)
    browser, pending, user = found
    return render(
        "consent.html",
        title="Allow access?",
        client_name=await _client_name(ctx, pending.client_id),
        scopes=scope_words(pending.scope),
        username=user.username,
        csrf_token=browser.csrf_token,
        request_id=pending.id,
    )


async def consent_submit(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    form = await _form(request)
    found = await _consent_context(ctx, request, single(form, "request"))
    if found is None:
        return error_page("Session expired", _EXPIRED)
    browser, pending, user = found
    if not _csrf_ok(browser, form):
        return _csrf_failure()
    decision = single(form, "decision")
    if decision not in ("approve", "deny"):
        return error_page("Invalid request", "Choose Allow or Deny.")
    client = await ctx.clients.get(pending.client_id)
    if client is None or not client.enabled:
        return error_page("Unknown application", "The application is no longer registered.")
    if decision == "deny":
        audit("consent_denied", sub=user.sub, client_id=client.client_id)
        return await deny(ctx, pending, AccessDenied("the user denied the request"))
    response = await issue_code(ctx, browser, pending, client, see_other("/"), consented=True)
    audit("consent_granted", sub=user.sub, client_id=client.client_id, scope=pending.scope)
    return response


__all__ = [
    "advance",
    "consent_page",
    "consent_submit",
    "enrol_page",
    "enrol_submit",
    "login_page",
    "login_submit",
    "mfa_page",
    "mfa_submit",
]
