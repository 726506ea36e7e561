"""The flow engine: what comes next for a pending request, and how the request ends.

A pending request (`store.pending_requests`, of kind authorization or device) waits in one
browser session while its user signs in, shows a second factor and consents. The authorization
endpoint, `/authorize/resume` and every page that can finish a flow ask this module instead of
deciding for themselves: `advance` picks the next step (login, consent, device consent, or the
code), `second_factor` the step after the password, `may_finish` is the one decision whether
this session may finish this request now, and a request ends with a code (`issue_code`), a
decision on its device code (`approve_device`, `deny_device`) or an error sent back to the
client (`end_with_error`).
"""

from __future__ import annotations

import secrets
import time
from functools import partial

from starlette.responses import Response

from bastion.events import audit
from bastion.identity.users import User
from bastion.protocol.errors import ConsentRequired, LoginRequired, OAuthError
from bastion.protocol.oidc import ACR_MFA
from bastion.protocol.rfc9207 import error_response_uri, success_response_uri
from bastion.server.browser import BrowserSession
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import acr_for, token_hash
from bastion.server.pages import PAGE_HEADERS, error_page, see_other
from bastion.store import codes, consents, device_codes, pending_requests, transaction
from bastion.store.codes import AuthorizationCodeRow
from bastion.store.pending_requests import AuthorizationRequestRow

unregistered = partial(error_page, "Unknown application", "The application is no longer registered.")
not_signed_in = partial(error_page, "Not signed in", "Sign in again.")
request_answered = partial(
    error_page, "Request expired", "This sign-in request has already been answered. Return to the application."
)


def requires_mfa(pending: AuthorizationRequestRow) -> bool:
    """The client asked for the multi-factor context class (`acr_values`)."""
    return ACR_MFA in (pending.acr_values or "").split()


def _needs_login(browser: BrowserSession, pending: AuthorizationRequestRow, now: int) -> bool:
    if not browser.authenticated or browser.auth_time is None:
        return True
    # Step-up: the client requires a second factor this session has not shown.
    if requires_mfa(pending) and "mfa" not in browser.amr:
        return True
    prompt = pending.prompt.split()
    # prompt=login: authenticate again, even with a live session (OpenID Connect Core §3.1.2.1).
    if "login" in prompt:
        return True
    # max_age: the last authentication must be recent enough.
    return pending.max_age is not None and now - browser.auth_time > pending.max_age


def may_finish(browser: BrowserSession, pending: AuthorizationRequestRow, user: User | None, now: int) -> bool:
    """Whether this session may finish this request now: its user exists and is enabled, and has
    signed in as the request asks (a second factor for `acr_values`, again for prompt=login,
    recently enough for max_age). The one place this is decided."""
    return user is not None and user.enabled and not _needs_login(browser, pending, now)


def second_factor(user: User, pending: AuthorizationRequestRow) -> str | None:
    """Where a user who has just shown the password goes next for a second factor (enrolment when
    they have none yet), or None when the password is enough."""
    if not (user.mfa_required or requires_mfa(pending)):
        return None
    return f"/{'login/mfa' if user.mfa_enrolled else 'mfa/enrol'}?request={pending.id}"


def resume_location(pending: AuthorizationRequestRow) -> str:
    """Where a page sends the browser once its part is done; `advance` decides from there."""
    return f"/authorize/resume?request={pending.id}"


async def client_of(ctx: ServerContext, pending: AuthorizationRequestRow) -> Client | None:
    """The request's client, while it is still registered and enabled."""
    client = await ctx.clients.get(pending.client_id)
    return client if client is not None and client.enabled else None


def _go(response: Response, location: str) -> Response:
    response.headers["location"] = location
    return response


async def advance(
    ctx: ServerContext, browser: BrowserSession, pending: AuthorizationRequestRow, response: Response | None = None
) -> Response:
    """The next step of a pending request: login, consent, device consent, or the redirect with
    the code. `response` (a 303) may already carry the cookie of a session just started."""
    response = response or Response(status_code=303, headers=dict(PAGE_HEADERS))
    client = await client_of(ctx, pending)
    if client is None:
        return unregistered()
    prompt = pending.prompt.split()
    user, granted = None, frozenset[str]()
    if browser.sub:
        user_row, granted = await consents.user_and_consent(ctx.database, browser.sub, client.client_id)
        user = None if user_row is None else User.from_row(user_row)
    if not may_finish(browser, pending, user, int(time.time())):
        if "none" in prompt:
            return await end_with_error(ctx, pending, LoginRequired("the user must log in"))
        return _go(response, f"/login?request={pending.id}")
    if pending.kind == pending_requests.DEVICE:
        # RFC 8628 §3.3, §5.4: a device code is always approved on its own consent page.
        return _go(response, f"/device/consent?request={pending.id}")
    if not frozenset(pending.scope.split()) <= granted or "consent" in prompt:
        if "none" in prompt:
            return await end_with_error(ctx, pending, ConsentRequired("the user has not consented to this scope"))
        return _go(response, f"/consent?request={pending.id}")
    return await issue_code(ctx, browser, pending, client, response)


def redirect_error(ctx: ServerContext, redirect_uri: str, error: OAuthError, state: str | None) -> Response:
    """The error back at the client's redirect URI, with `state` and `iss` (RFC 9207)."""
    return see_other(error_response_uri(redirect_uri, error, state=state, issuer=ctx.issuer))


async def end_with_error(ctx: ServerContext, pending: AuthorizationRequestRow, error: OAuthError) -> Response:
    """Forget the request and send `error` back to its client (RFC 6749 §4.1.2.1)."""
    await pending_requests.end(ctx.database, pending.id)
    return redirect_error(ctx, pending.redirect_uri, error, pending.state)


async def issue_code(
    ctx: ServerContext,
    browser: BrowserSession,
    pending: AuthorizationRequestRow,
    client: Client,
    response: Response,
    *,
    consented: bool = False,
) -> Response:
    """RFC 6749 §4.1.2: a single-use code of 256 bits, valid `code_lifetime` seconds.
    `consented`: the user has just approved the request's scopes; the consent is stored with the code."""
    if browser.sub is None or browser.auth_time is None:  # pragma: no cover - advance checked it
        return not_signed_in()
    code = secrets.token_urlsafe(32)
    now = int(time.time())
    row = AuthorizationCodeRow(
        code_hash=token_hash(code),
        client_id=client.client_id,
        sub=browser.sub,
        redirect_uri=pending.redirect_uri,
        scope=pending.scope,
        nonce=pending.nonce,
        code_challenge=pending.code_challenge,
        sid=browser.sid,
        auth_time=browser.auth_time,
        amr=" ".join(browser.amr),
        acr=acr_for(browser.amr),
        created_at=now,
        expires_at=now + ctx.settings.code_lifetime,
        used_at=None,
        access_jti=None,
        access_exp=None,
        refresh_family=None,
    )
    # One transaction: the consent just approved (merged into what was granted before, so two
    # tabs approving at once both succeed), the code and the end of its pending request. Expired
    # rows are swept by `bastion.server.sweeper`.
    # The request's end comes first and decides: of simultaneous submissions (a double click,
    # a replayed form) only the one that ends it issues a code; one request, one code.
    async with transaction(ctx.database) as tx:
        ended = await pending_requests.end(tx, pending.id)
        if ended:
            if consented:
                await consents.merge(tx, browser.sub, client.client_id, tuple(pending.scope.split()), now)
            await codes.insert(tx, row)
    if not ended:
        return request_answered()
    audit("authorization_code_issued", client_id=client.client_id, sub=browser.sub, scope=pending.scope)
    return _go(response, success_response_uri(pending.redirect_uri, code=code, state=pending.state, issuer=ctx.issuer))


async def approve_device(
    ctx: ServerContext,
    browser: BrowserSession,
    pending: AuthorizationRequestRow,
    user_code: str,
    *,
    sub: str,
    auth_time: int,
) -> bool:
    """RFC 8628 §3.3: the user allowed the device. Its code records who signed in and how (for
    the tokens the device's poll gets) and the pending request ends, in one transaction; False
    if the code was no longer pending."""
    now = int(time.time())
    async with transaction(ctx.database) as tx:
        amr = " ".join(browser.amr)
        done = await device_codes.approve(
            tx, user_code, sub=sub, sid=browser.sid, auth_time=auth_time, amr=amr, acr=acr_for(browser.amr), now=now
        )
        await pending_requests.end(tx, pending.id)
    return done


async def deny_device(ctx: ServerContext, pending: AuthorizationRequestRow, user_code: str, *, sub: str) -> bool:
    """RFC 8628 §3.5: the user denied the device (its poll gets access_denied); the pending
    request ends in the same transaction. False if the code was no longer pending."""
    async with transaction(ctx.database) as tx:
        done = await device_codes.deny(tx, user_code, sub=sub, now=int(time.time()))
        await pending_requests.end(tx, pending.id)
    return done


__all__ = [
    "advance",
    "approve_device",
    "client_of",
    "deny_device",
    "end_with_error",
    "issue_code",
    "may_finish",
    "not_signed_in",
    "redirect_error",
    "requires_mfa",
    "resume_location",
    "second_factor",
    "unregistered",
]
