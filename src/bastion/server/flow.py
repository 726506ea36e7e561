"""The flow engine: what comes next for a pending request, and how the request ends.

A pending request (`store.pending_requests`, of kind authorization or device) waits in one
browser session while its user signs in, shows a second factor and consents. The authorization
endpoint, `/authorize/resume` and every page that can finish a flow ask this module instead of
deciding for themselves: `advance` picks the next step (login, consent, device consent, or the
code), `second_factor` the step after the password, and a request ends with a code
(`issue_code`), a decision on its device code (`approve_device`, `deny_device`) or an error sent
back to the client (`end_with_error`).

Whether this session may finish this request now (`may_finish`) is decided in one place,
`check_finish`, and its answer is the only way to finish: `issue_code` and `approve_device` take
the `Finish` it returns and nothing else, so no page (consent, device consent, the authorization
endpoint and `/authorize/resume` through `advance`, a page added later) can issue a code or
approve a device without the check. A refusal sends the browser to the login page, which asks
for what is missing (the password again, the second factor) and then resumes the request.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from functools import partial

from starlette.responses import Response

from bastion.config import Settings
from bastion.events import audit
from bastion.identity.users import User
from bastion.protocol.errors import ConsentRequired, LoginRequired, OAuthError
from bastion.protocol.oidc import ACR_MFA, FORM_POST, QUERY
from bastion.protocol.rfc6749.authorization import response_uri
from bastion.protocol.rfc9207 import error_params, success_params
from bastion.server.browser import BrowserSession
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import acr_for, token_hash
from bastion.server.pages import PAGE_HEADERS, error_page
from bastion.server.pages.form_post import form_post
from bastion.store import codes, consents, device_codes, pending_requests, transaction
from bastion.store.codes import AuthorizationCodeRow
from bastion.store.pending_requests import AuthorizationRequestRow

unregistered = partial(error_page, "Unknown application", "The application is no longer registered.")
request_answered = partial(
    error_page,
    "Request expired",
    "This sign-in request has already been answered, or its session has ended. Return to the application.",
)


def requires_mfa(pending: AuthorizationRequestRow, client: Client | None) -> bool:
    """The request needs the multi-factor context class: its client asked for it (`acr_values`),
    or is registered to require it for every code and device approval (`--require-mfa`)."""
    return ACR_MFA in (pending.acr_values or "").split() or (client is not None and client.require_mfa)


def account_requires_mfa(settings: Settings, user: User) -> bool:
    """The account must show a second factor at sign-in: it has one enrolled (a factor, once set
    up, is always asked, under every policy), it is marked to (`users set-mfa USER required`),
    or the server's policy says so (`mfa=required`, or `mfa=roles` and it holds one of
    `mfa_roles`). `mfa=off` and `optional` add nothing to the first two (README, "Enable MFA")."""
    if user.mfa_enrolled or user.require_mfa or settings.mfa == "required":
        return True
    return settings.mfa == "roles" and not set(settings.mfa_roles).isdisjoint(user.roles)


def needs_second_factor(
    settings: Settings, user: User, pending: AuthorizationRequestRow, client: Client | None
) -> bool:
    """Whether signing in for this request takes a second factor: the request or the account needs it."""
    return requires_mfa(pending, client) or account_requires_mfa(settings, user)


def _needs_login(
    settings: Settings,
    browser: BrowserSession,
    pending: AuthorizationRequestRow,
    client: Client,
    user: User,
    now: int,
) -> bool:
    if not browser.authenticated or browser.auth_time is None or browser.sub != user.sub:
        return True
    # Step-up: the request needs a second factor (`acr_values`, a client that requires one), or
    # the account does (the policy, a mark on the user, a factor enrolled since), and this session
    # has not shown it.
    if "mfa" not in browser.amr and needs_second_factor(settings, user, pending, client):
        return True
    prompt = pending.prompt.split()
    # prompt=login: authenticate again, even with a live session (OpenID Connect Core §3.1.2.1).
    if "login" in prompt:
        return True
    # max_age: the last authentication must be recent enough; max_age=0 is prompt=login (OpenID
    # Connect Core §3.1.2.1, errata: else a sign-in within the same second would count as fresh).
    if pending.max_age is None:
        return False
    return pending.max_age == 0 or now - browser.auth_time > pending.max_age


def may_finish(
    settings: Settings,
    browser: BrowserSession,
    pending: AuthorizationRequestRow,
    client: Client,
    user: User | None,
    now: int,
) -> bool:
    """Whether this session may finish this request now: its user exists and is enabled, and has
    signed in as the request, its client, the account and the MFA policy ask (a second factor for
    `acr_values`, a client, an account or a policy that requires one, again for prompt=login,
    recently enough for max_age)."""
    return user is not None and user.enabled and not _needs_login(settings, browser, pending, client, user, now)


_SEAL = object()


Seal = tuple[object, str, str, str, bool]


def _seal_of(browser: BrowserSession, pending: AuthorizationRequestRow, sub: str, stored: bool) -> Seal:
    """The seal of a Finish for this session, request, user and whether the request is stored (a
    copy changed by `replace` no longer matches it)."""
    return (_SEAL, browser.id_hash, pending.id, sub, stored)


@dataclass(frozen=True, slots=True)
class Finish:
    """What `check_finish` hands a page whose session may finish its request now; `issue_code`
    and `approve_device` take only this. Made nowhere else: the seal is private to this module
    and names the session, the request and the user it was checked for."""

    browser: BrowserSession
    pending: AuthorizationRequestRow
    client: Client
    user: User
    sub: str
    auth_time: int
    granted: frozenset[str]  # the scopes the user has already granted the client
    # False for a request that was never stored (the authorization endpoint finishing it at once):
    # there is no row to take, and nobody else can answer it.
    stored: bool
    seal: Seal = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seal != _seal_of(self.browser, self.pending, self.sub, self.stored):
            raise TypeError("a Finish is made only by flow.check_finish")


async def check_finish(
    ctx: ServerContext,
    browser: BrowserSession,
    pending: AuthorizationRequestRow,
    response: Response | None = None,
    *,
    stored: bool = True,
) -> Finish | Response:
    """The one check before a request ends with a code or an approved device: the `Finish` if
    this session may finish it now (`may_finish`), else the answer. That answer is login_required
    to the client for prompt=none, else the login page for the request (`response`, a 303, may
    carry the cookie of a session just started): it asks for the password, then the second factor
    when one is needed, and marks the request's prompt=login and max_age met. `stored`: False for
    a request the authorization endpoint has not stored; it is stored before a page is shown."""
    client = await client_of(ctx, pending)
    if client is None:
        return unregistered()
    user, granted = None, frozenset[str]()
    if browser.sub:
        account = browser.account
        if account is not None and account.client_id == client.client_id:
            # Read with this session's row (its user, joined by its sub): one statement less.
            user_row, granted = account.user, account.granted
        else:
            user_row, granted = await consents.user_and_consent(ctx.database, browser.sub, client.client_id)
        user = None if user_row is None else User.from_row(user_row)
    if (
        user is None
        or browser.sub is None
        or browser.auth_time is None
        or not may_finish(ctx.settings, browser, pending, client, user, int(time.time()))
    ):
        if "none" in pending.prompt.split():
            return await end_with_error(ctx, pending, LoginRequired("the user must log in"), stored=stored)
        response = response or Response(status_code=303, headers=dict(PAGE_HEADERS))
        return await _to_page(ctx, pending, stored, response, f"/login?request={pending.id}")
    seal = _seal_of(browser, pending, browser.sub, stored)
    return Finish(browser, pending, client, user, browser.sub, browser.auth_time, granted, stored, seal)


def mfa_offered(settings: Settings, user: User, pending: AuthorizationRequestRow, client: Client | None) -> bool:
    """`mfa=optional`: a user without a second factor, signing in for a request that does not need
    one, is offered enrolment and may decline it ("Not now") for this sign-in."""
    return (
        settings.mfa == "optional"
        and not user.mfa_enrolled
        and not needs_second_factor(settings, user, pending, client)
    )


def second_factor(
    settings: Settings, user: User, pending: AuthorizationRequestRow, client: Client | None
) -> str | None:
    """Where a user who has just shown the password goes next for a second factor (enrolment when
    they have none yet, or when the policy offers it), or None when the password is enough."""
    if mfa_offered(settings, user, pending, client):
        return f"/mfa/enrol?request={pending.id}"
    if not needs_second_factor(settings, user, pending, client):
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


async def _to_page(
    ctx: ServerContext, pending: AuthorizationRequestRow, stored: bool, response: Response, location: str
) -> Response:
    """Send the browser to a page that continues `pending`, storing the request first if it is
    not stored yet (only a request that a page continues is stored)."""
    if not stored:
        await pending_requests.insert(ctx.database, pending)
    return _go(response, location)


async def advance(
    ctx: ServerContext,
    browser: BrowserSession,
    pending: AuthorizationRequestRow,
    response: Response | None = None,
    *,
    stored: bool = True,
) -> Response:
    """The next step of a pending request: login, consent, device consent, or the redirect with
    the code. `response` (a 303) may already carry the cookie of a session just started.
    `stored`: False for a new request of the authorization endpoint, stored only if a page
    follows (a request finished at once costs no row)."""
    response = response or Response(status_code=303, headers=dict(PAGE_HEADERS))
    finish = await check_finish(ctx, browser, pending, response, stored=stored)
    if isinstance(finish, Response):
        return finish
    prompt = pending.prompt.split()
    if pending.kind == pending_requests.DEVICE:
        # RFC 8628 §3.3, §5.4: a device code is always approved on its own consent page.
        return await _to_page(ctx, pending, stored, response, f"/device/consent?request={pending.id}")
    if not frozenset(pending.scope.split()) <= finish.granted or "consent" in prompt:
        if "none" in prompt:
            refusal = ConsentRequired("the user has not consented to this scope")
            return await end_with_error(ctx, pending, refusal, stored=stored)
        return await _to_page(ctx, pending, stored, response, f"/consent?request={pending.id}")
    return await issue_code(ctx, finish, response)


def authorization_response(
    redirect_uri: str, mode: str, params: dict[str, str | None], response: Response | None = None
) -> Response:
    """An authorization response (a code or an error) to the client in the request's response
    mode: `form_post`, the page whose form posts `params` to the redirect URI (OAuth 2.0 Form
    Post Response Mode §2), else a 303 to the redirect URI with `params` added to its query.
    `response` is the 303 to use (it may carry the cookie of a session just started)."""
    if mode == FORM_POST:
        return form_post(redirect_uri, params, response)
    return _go(response or Response(status_code=303, headers=dict(PAGE_HEADERS)), response_uri(redirect_uri, params))


def redirect_error(
    ctx: ServerContext, redirect_uri: str, error: OAuthError, state: str | None, mode: str = QUERY
) -> Response:
    """The error back to the client's redirect URI in `mode`, with `state` and `iss` (RFC 9207)."""
    return authorization_response(redirect_uri, mode, error_params(error, state=state, issuer=ctx.issuer))


async def end_with_error(
    ctx: ServerContext, pending: AuthorizationRequestRow, error: OAuthError, *, stored: bool = True
) -> Response:
    """Forget the request (if it was stored) and send `error` back to its client (RFC 6749
    §4.1.2.1), in the request's response mode (OpenID Connect Core §3.1.2.6: errors travel as
    the client asked)."""
    if stored:
        await pending_requests.end(ctx.database, pending.id)
    return redirect_error(ctx, pending.redirect_uri, error, pending.state, pending.response_mode)


async def issue_code(ctx: ServerContext, finish: Finish, response: Response, *, consented: bool = False) -> Response:
    """RFC 6749 §4.1.2: a single-use code of 256 bits, valid `code_lifetime` seconds.
    `consented`: the user has just approved the request's scopes; the consent is stored with the code."""
    browser, pending, client = finish.browser, finish.pending, finish.client
    code = secrets.token_urlsafe(32)
    now = int(time.time())
    row = AuthorizationCodeRow(
        code_hash=token_hash(code),
        client_id=client.client_id,
        sub=finish.sub,
        redirect_uri=pending.redirect_uri,
        scope=pending.scope,
        nonce=pending.nonce,
        code_challenge=pending.code_challenge,
        sid=browser.sid,
        auth_time=finish.auth_time,
        amr=" ".join(browser.amr),
        acr=acr_for(browser.amr),
        created_at=now,
        expires_at=now + ctx.settings.code_lifetime,
        used_at=None,
        access_jti=None,
        access_exp=None,
        refresh_family=None,
    )
    if not finish.stored and not consented:
        # A request the authorization endpoint finishes at once was never stored: nothing to take.
        await codes.insert(ctx.database, row)
        return _code_issued(ctx, finish, code, response)
    # One transaction: the end of the pending request, taken from this session (one code per
    # request, even for two posts at once; none once the session has ended or rotated away),
    # the consent just approved (merged into what was granted before, so two tabs approving at
    # once both succeed), and the code. Expired rows are swept by `bastion.server.sweeper`.
    async with transaction(ctx.database) as tx:
        if finish.stored and not await pending_requests.take(tx, pending.id, browser.id_hash):
            return request_answered()
        if consented:
            await consents.merge(tx, finish.sub, client.client_id, tuple(pending.scope.split()), now)
        await codes.insert(tx, row)
    return _code_issued(ctx, finish, code, response)


def _code_issued(ctx: ServerContext, finish: Finish, code: str, response: Response) -> Response:
    """The code's audit event and the authorization response that carries it."""
    pending = finish.pending
    audit("authorization_code_issued", client_id=finish.client.client_id, sub=finish.sub, scope=pending.scope)
    params = success_params(code=code, state=pending.state, issuer=ctx.issuer)
    return authorization_response(pending.redirect_uri, pending.response_mode, params, response)


async def approve_device(ctx: ServerContext, finish: Finish, user_code: str) -> bool:
    """RFC 8628 §3.3: the user allowed the device. Its code records who signed in and how (for
    the tokens the device's poll gets) and the pending request ends, in one transaction; False
    if the code was no longer pending, or the request no longer in this session."""
    browser = finish.browser
    now = int(time.time())
    async with transaction(ctx.database) as tx:
        # A request never stored is never a device's (those are continued on pages): take refuses it.
        if not await pending_requests.take(tx, finish.pending.id, browser.id_hash):
            return False
        amr = " ".join(browser.amr)
        return await device_codes.approve(
            tx,
            user_code,
            sub=finish.sub,
            sid=browser.sid,
            auth_time=finish.auth_time,
            amr=amr,
            acr=acr_for(browser.amr),
            now=now,
        )


async def deny_device(ctx: ServerContext, pending: AuthorizationRequestRow, user_code: str, *, sub: str) -> bool:
    """RFC 8628 §3.5: the user denied the device (its poll gets access_denied); the pending
    request ends in the same transaction. False if the code was no longer pending."""
    async with transaction(ctx.database) as tx:
        done = await device_codes.deny(tx, user_code, sub=sub, now=int(time.time()))
        await pending_requests.end(tx, pending.id)
    return done


__all__ = [
    "Finish",
    "account_requires_mfa",
    "advance",
    "approve_device",
    "authorization_response",
    "check_finish",
    "client_of",
    "deny_device",
    "end_with_error",
    "issue_code",
    "may_finish",
    "mfa_offered",
    "needs_second_factor",
    "redirect_error",
    "requires_mfa",
    "resume_location",
    "second_factor",
    "unregistered",
]
