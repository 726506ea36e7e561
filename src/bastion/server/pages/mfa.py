"""The second factor after the password: a TOTP or recovery code (`/login/mfa`), or the TOTP
enrolment of an account that must have one and has none yet (`/mfa/enrol`), also offered under
`mfa=optional` to an account that need not, which may decline it for this sign-in ("Not now").

During enrolment the new secret travels in the form, encrypted under the key-encryption key and
bound to this session's `sid`, until a code from it proves the authenticator has it. Wrong codes
are counted per account (`second_factor_failures_per_account`), apart from wrong passwords:
only someone who has just given the password can make one, so strangers' password failures
never block this step; a browser with a valid device cookie is judged by its own failures.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import replace

from starlette.responses import Response

from bastion.events import audit
from bastion.identity import recovery, sessions, totp, users
from bastion.identity.users import User
from bastion.server import flow
from bastion.server.browser import BrowserSession, authenticate, trusted_device
from bastion.server.context import ServerContext
from bastion.server.pages import PAGE_HEADERS, error_page, render, see_other
from bastion.server.pages.branding import current_branding
from bastion.server.pages.login import refused_message
from bastion.server.pages.step import EITHER, Needs, Page, back_to, enabled, with_page


def _may_enrol(user: User) -> bool:
    return user.enabled and not user.mfa_enrolled


SECOND_FACTOR = Needs(stage=sessions.PASSWORD, kinds=EITHER, user=enabled)
ENROLMENT = replace(SECOND_FACTOR, user=_may_enrol)


# The recovery codes can be downloaded from their page for this long after enrolment.
CODES_DOWNLOAD_SECONDS = 600
CODES_FILE = "recovery-codes.txt"


async def _mfa_form(page: Page, *, message: str = "", status: int = 200) -> Response:
    return page.render_form(
        "mfa.html",
        status,
        title="Two-step verification",
        message=message,
        back=back_to(page, await page.client_name()),
    )


@with_page(SECOND_FACTOR)
async def mfa_page(page: Page) -> Response:
    return await _mfa_form(page)


@with_page(replace(SECOND_FACTOR, post=True))
async def mfa_submit(page: Page) -> Response:
    user = page.user
    device = trusted_device(page.ctx, page.request, user.username)
    refused = refused_message(await page.ctx.limits.check_second_factor(user.sub, device))
    if refused is not None:
        return await _mfa_form(page, message=refused, status=429)
    amr = await _check_second_factor(page.ctx, user, page.field("code") or "")
    if amr is None:
        await page.ctx.limits.record_second_factor_failure(user.sub, device)
        audit("second_factor_failed", sub=user.sub)
        return await _mfa_form(page, message="That code is not valid (or was already used).", status=400)
    response = see_other(flow.resume_location(page.pending))
    await authenticate(
        page.ctx, response, page.browser, sub=user.sub, username=user.username, amr=amr, satisfied=page.pending
    )
    audit("login_succeeded", sub=user.sub, stage="second_factor", amr=" ".join(amr))
    return response


async def _check_second_factor(ctx: ServerContext, user: User, code: str) -> tuple[str, ...] | None:
    """The `amr` the code shows (RFC 8176), or None: a TOTP step not used before, else an unused
    recovery code."""
    secret = users.decrypt_totp_secret(ctx.people.encryptor, user)
    if secret is not None:
        step = totp.matching_step(secret, code, last_step=user.totp_last_step)
        if step is not None and await users.use_totp_step(ctx.database, user.sub, step):
            return ("pwd", "otp", "mfa")
    if recovery.looks_like_recovery_code(code) and await users.use_recovery_code(ctx.database, user.sub, code):
        audit("recovery_code_used", sub=user.sub)
        return ("pwd", "mfa")
    return None


def _seal(ctx: ServerContext, browser: BrowserSession, secret: str) -> str:
    blob = ctx.people.encryptor.encrypt(secret.encode(), f"enrol:{browser.sid}")
    return base64.urlsafe_b64encode(blob).decode()


def _unseal(ctx: ServerContext, browser: BrowserSession, sealed: str | None) -> str | None:
    if not sealed:
        return None
    try:
        return ctx.people.encryptor.decrypt(base64.urlsafe_b64decode(sealed), f"enrol:{browser.sid}").decode()
    except (ValueError, binascii.Error):
        return None


async def _offered(page: Page) -> bool:
    """Whether this enrolment is only offered (`mfa=optional`), so the user may decline it."""
    client = await flow.client_of(page.ctx, page.pending)
    return flow.mfa_offered(page.ctx.settings, page.user, page.pending, client)


async def _enrol_form(page: Page, secret: str, *, message: str = "", status: int = 200) -> Response:
    # The issuer label is the product's name, so the authenticator app lists the account under it.
    uri = totp.provisioning_uri(secret, page.user.username, current_branding().product_name)
    return page.render_form(
        "enrol.html",
        status,
        title="Set up two-step verification",
        qr_svg=totp.qr_svg(uri),
        # On a phone the QR code cannot be scanned by the phone showing it: the otpauth:// link
        # opens the authenticator app there (Key Uri Format).
        otpauth_uri=uri,
        secret=secret,
        enrolment=_seal(page.ctx, page.browser, secret),
        message=message,
        back=back_to(page, await page.client_name()),
        offered=await _offered(page),
    )


@with_page(ENROLMENT)
async def enrol_page(page: Page) -> Response:
    return await _enrol_form(page, totp.generate_secret())


async def _decline(page: Page) -> Response:
    """ "Not now": the password alone finishes this sign-in, when the policy only offered the
    factor (checked again here: the request or the account may need one after all)."""
    ctx, user = page.ctx, page.user
    if not await _offered(page):
        return error_page("Second factor required", "This sign-in needs a second factor. Sign in again.", 400)
    response = see_other(flow.resume_location(page.pending))
    await authenticate(
        ctx, response, page.browser, sub=user.sub, username=user.username, amr=("pwd",), satisfied=page.pending
    )
    audit("mfa_enrolment_declined", sub=user.sub)
    return response


@with_page(replace(ENROLMENT, post=True))
async def enrol_submit(page: Page) -> Response:
    if page.field("skip") is not None:
        return await _decline(page)
    ctx, user = page.ctx, page.user
    secret = _unseal(ctx, page.browser, page.field("enrolment"))
    if secret is None:
        return error_page("Form expired", "The enrolment form was altered or has expired. Sign in again.", 400)
    step = totp.matching_step(secret, page.field("code") or "")
    if step is None:
        return await _enrol_form(page, secret, message="That code is not valid; try the next one.", status=400)
    try:
        codes = await users.enrol_totp(ctx.database, ctx.people.encryptor, user.sub, secret, step)
    except users.UserError:
        return error_page("Already enrolled", "A second factor is already set up for this account. Sign in again.")
    audit("totp_enrolled", sub=user.sub)
    next_url = flow.resume_location(page.pending)
    cookies = Response()
    amr = ("pwd", "otp", "mfa")
    signed_in = await authenticate(
        ctx, cookies, page.browser, sub=user.sub, username=user.username, amr=amr, satisfied=page.pending
    )
    response = render(
        "recovery_codes.html",
        title="Save your recovery codes",
        codes=codes,
        next_url=next_url,
        csrf_token=signed_in.csrf_token,
        sealed_codes=_seal_codes(ctx, signed_in, codes),
    )
    for cookie in cookies.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", cookie)
    return response


def _seal_codes(ctx: ServerContext, browser: BrowserSession, codes: list[str]) -> str:
    """The codes for their download, encrypted and bound to the signed-in session, for a while:
    nothing keeps them on the server (only their hashes are stored)."""
    plain = json.dumps({"codes": codes, "until": int(time.time()) + CODES_DOWNLOAD_SECONDS}).encode()
    return base64.urlsafe_b64encode(ctx.people.encryptor.encrypt(plain, f"recovery:{browser.sid}")).decode()


def _unseal_codes(ctx: ServerContext, browser: BrowserSession, sealed: str | None) -> list[str] | None:
    try:
        blob = ctx.people.encryptor.decrypt(base64.urlsafe_b64decode(sealed or ""), f"recovery:{browser.sid}")
        data = json.loads(blob)
    except (ValueError, binascii.Error):
        return None
    if not isinstance(data, dict) or data.get("until", 0) < time.time():
        return None
    codes = data.get("codes")
    return [str(code) for code in codes] if isinstance(codes, list) else None


@with_page(Needs(post=True, stage=sessions.AUTHENTICATED, user=enabled))
async def recovery_codes_download(page: Page) -> Response:
    """The recovery codes just shown, as a text file to keep (`attachment`, never stored by a cache)."""
    codes = _unseal_codes(page.ctx, page.browser, page.field("codes"))
    if codes is None:
        return error_page("Download expired", "These codes can no longer be downloaded. Write them down from the page.")
    text = f"{current_branding().product_name} recovery codes for {page.user.username}\n"
    text += "Each code works once. Keep this file somewhere safe.\n\n" + "\n".join(codes) + "\n"
    headers = {**PAGE_HEADERS, "content-disposition": f'attachment; filename="{CODES_FILE}"'}
    return Response(text, media_type="text/plain; charset=utf-8", headers=headers)


__all__ = [
    "ENROLMENT",
    "SECOND_FACTOR",
    "enrol_page",
    "enrol_submit",
    "mfa_page",
    "mfa_submit",
    "recovery_codes_download",
]
