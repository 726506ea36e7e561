"""Sign-in with a password (`/login`): the first page of every pending request, of either kind.

Failed sign-ins are throttled without letting a stranger lock the owner out (SECURITY.md,
"Lockouts"): a browser whose device cookie is valid for the account typed is judged by its own
failures (`login_failures_per_device`); any other by its address, by the account from that
address and by the account across untrusted browsers (`login_failures_per_address`,
`login_failures_per_account_address`, `login_failures_per_account`). The page says how long to
wait without revealing whether the account exists.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.responses import Response

from bastion.events import audit
from bastion.identity import sessions, users
from bastion.identity.users import User
from bastion.protocol.errors import AccessDenied
from bastion.ratelimit import Decision
from bastion.server import flow
from bastion.server.browser import authenticate, start_session, trusted_device
from bastion.server.metrics import count_login
from bastion.server.pages import see_other, throttled_message
from bastion.server.pages.step import EITHER, Needs, Page, back_to, with_page
from bastion.store.pending_requests import AUTHORIZATION

LOGIN = Needs(kinds=EITHER)


def _login_form(
    page: Page, client_name: str, *, username: str | None = None, message: str = "", status: int = 200
) -> Response:
    """The form; after a refusal it keeps the username typed (the password field is always empty)."""
    return page.render_form(
        "login.html",
        status,
        title="Sign in",
        client_name=client_name,
        username=page.pending.login_hint or "" if username is None else username,
        message=message,
        back=back_to(page, client_name),
    )


def refused_message(refusal: Decision | None) -> str | None:
    """What a page says when failed attempts are over the limit (None: they are not)."""
    return None if refusal is None else throttled_message("Too many failed sign-in attempts.", refusal.retry_after)


@with_page(LOGIN)
async def login_page(page: Page) -> Response:
    return _login_form(page, await page.client_name())


@with_page(replace(LOGIN, post=True))
async def login_submit(page: Page) -> Response:
    client_name = await page.client_name()
    username = (page.field("username") or "").strip()
    device = trusted_device(page.ctx, page.request, username)
    refused = refused_message(await page.ctx.limits.check_login(username, page.source, device))
    if refused is not None:
        count_login("throttled")
        audit("login_throttled", username_hash=sessions.hash_session_id(username.lower())[:12])
        return _login_form(page, client_name, username=username, message=refused, status=429)
    user = await users.find_user(page.ctx.database, username) if username else None
    verdict = await page.ctx.people.passwords.verify(
        user.password_hash if user is not None else None, page.field("password") or ""
    )
    if user is None or not verdict.matched or not user.enabled or user.username != username:
        await page.ctx.limits.record_login_failure(username, page.source, device)
        count_login("failed")
        audit("login_failed", sub=user.sub if user is not None else None)
        return _login_form(page, client_name, username=username, message="Wrong username or password.", status=400)
    if verdict.new_hash is not None:
        # Parameters changed since this hash was made: store one at the current parameters.
        await users.store_password_hash(page.ctx.database, user.sub, verdict.new_hash)
        audit("password_rehashed", sub=user.sub)
    return await _signed_in(page, user)


@with_page(Needs(post=True, kinds=frozenset({AUTHORIZATION})))
async def back_to_client(page: Page) -> Response:
    """The "Back to CLIENT" button on any page of an authorization request: the flow ends, and the client
    hears `access_denied` at its redirect URI (RFC 6749 §4.1.2.1), as when consent is denied."""
    audit("authorization_cancelled", client_id=page.pending.client_id, sub=page.browser.sub)
    return await flow.end_with_error(page.ctx, page.pending, AccessDenied("the user went back without signing in"))


async def _signed_in(page: Page, user: User) -> Response:
    """The password was right: on to the second factor when one is needed, else back to the flow."""
    response = see_other(flow.resume_location(page.pending))
    settings, client = page.ctx.settings, await flow.client_of(page.ctx, page.pending)
    second_factor = flow.second_factor(settings, user, page.pending, client)
    if second_factor is None:
        await authenticate(
            page.ctx, response, page.browser, sub=user.sub, username=user.username, amr=("pwd",), satisfied=page.pending
        )
    else:
        await start_session(page.ctx, response, page.browser, sub=user.sub, stage=sessions.PASSWORD, amr=("pwd",))
        response.headers["location"] = second_factor
    # An enrolment offered by mfa=optional is not a second factor required.
    required = second_factor is not None and flow.needs_second_factor(settings, user, page.pending, client)
    count_login("second_factor_required" if required else "succeeded")
    audit("login_succeeded", sub=user.sub, stage="password")
    return response


__all__ = ["LOGIN", "back_to_client", "login_page", "login_submit", "refused_message"]
