"""Sign-in with a password (`/login`): the first page of every pending request, of either kind.

Failed sign-ins (the password here, the second factor in `mfa`) are throttled per account name
and per source address through the `login_failures_per_account_burst`,
`login_failures_per_account` and `login_failures_per_address` policies (delays that grow with
the failures, then a temporary lock); the page says how long to wait without revealing whether
the account exists.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.responses import Response

from bastion.events import audit
from bastion.identity import sessions, users
from bastion.identity.users import User
from bastion.server import flow
from bastion.server.browser import authenticate, start_session
from bastion.server.pages import see_other, throttled_message
from bastion.server.pages.step import EITHER, Needs, Page, with_page

LOGIN = Needs(kinds=EITHER)


def _login_form(page: Page, client_name: str, *, message: str = "", status: int = 200) -> Response:
    return page.render_form(
        "login.html",
        status,
        title="Sign in",
        client_name=client_name,
        username=page.pending.login_hint or "",
        message=message,
    )


async def throttled(page: Page, account: str) -> str | None:
    """What the page says when sign-in failures for this account or address are over the limit."""
    refusal = await page.ctx.limits.check_login(account, page.source)
    return None if refusal is None else throttled_message("Too many failed sign-in attempts.", refusal.retry_after)


async def record_failure(page: Page, account: str) -> None:
    """Count a failed sign-in (a wrong password or second factor) for the throttle."""
    await page.ctx.limits.record_login_failure(account, page.source)


@with_page(LOGIN)
async def login_page(page: Page) -> Response:
    return _login_form(page, await page.client_name())


@with_page(replace(LOGIN, post=True))
async def login_submit(page: Page) -> Response:
    client_name = await page.client_name()
    username = (page.field("username") or "").strip()
    refused = await throttled(page, username)
    if refused is not None:
        audit("login_throttled", username_hash=sessions.hash_session_id(username.lower())[:12])
        return _login_form(page, client_name, message=refused, status=429)
    user = await users.find_user(page.ctx.database, username) if username else None
    verdict = await page.ctx.people.passwords.verify(
        user.password_hash if user is not None else None, page.field("password") or ""
    )
    if user is None or not verdict.matched or not user.enabled or user.username != username:
        await record_failure(page, username)
        audit("login_failed", sub=user.sub if user is not None else None)
        return _login_form(page, client_name, message="Wrong username or password.", status=400)
    if verdict.new_hash is not None:
        # Parameters changed since this hash was made: store one at the current parameters.
        await users.store_password_hash(page.ctx.database, user.sub, verdict.new_hash)
        audit("password_rehashed", sub=user.sub)
    return await _signed_in(page, user)


async def _signed_in(page: Page, user: User) -> Response:
    """The password was right: on to the second factor when one is needed, else back to the flow."""
    response = see_other(flow.resume_location(page.pending))
    second_factor = flow.second_factor(user, page.pending)
    if second_factor is None:
        await authenticate(page.ctx, response, page.browser, sub=user.sub, amr=("pwd",), satisfied=page.pending)
    else:
        await start_session(page.ctx, response, page.browser, sub=user.sub, stage=sessions.PASSWORD, amr=("pwd",))
        response.headers["location"] = second_factor
    audit("login_succeeded", sub=user.sub, stage="password")
    return response


__all__ = ["LOGIN", "login_page", "login_submit", "record_failure", "throttled"]
