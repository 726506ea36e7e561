"""The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, RFC 9207, OpenID Connect Core §3.1.2).

The request is validated before anyone is asked to log in. An unknown client or a redirect URI
that does not match answers an error page with 400 and never redirects; every other error goes
back to the redirect URI with `error`, `state` and `iss`. A valid request is stored (bound to the
browser session) and the user is taken through login, second factor and consent by `advance`.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.identity import users
from bastion.protocol.errors import ConsentRequired, InvalidRequest, LoginRequired, OAuthError
from bastion.protocol.oidc import ACR_MFA
from bastion.protocol.rfc6749.authorization import (
    AuthorizationRequest,
    InvalidRedirectUri,
    select_redirect_uri,
    single_query_value,
    validate_authorization_request,
)
from bastion.protocol.rfc6749.params import check_content_type, parse_form
from bastion.protocol.rfc9207 import error_response_uri, success_response_uri
from bastion.server.audit import audit
from bastion.server.browser import BrowserSession, load_session, start_session
from bastion.server.clients import Client
from bastion.server.context import ServerContext
from bastion.server.issuance import acr_for, token_hash
from bastion.server.pages import PAGE_HEADERS, error_page
from bastion.server.responses import read_body
from bastion.store import codes, consents, pending_requests, transaction
from bastion.store.codes import AuthorizationCodeRow
from bastion.store.pending_requests import AuthorizationRequestRow


def see_other(url: str) -> RedirectResponse:
    """RFC 9700 §4.12: 303, so a form post is never replayed to the next location."""
    return RedirectResponse(url, status_code=303, headers=dict(PAGE_HEADERS))


def redirect_error(ctx: ServerContext, redirect_uri: str, error: OAuthError, state: str | None) -> Response:
    return see_other(error_response_uri(redirect_uri, error, state=state, issuer=ctx.issuer))


async def _request_params(request: Request) -> dict[str, list[str]]:
    if request.method == "POST":
        # OpenID Connect Core §3.1.2.1: POST with form serialization is supported as well.
        check_content_type(request.headers.get("content-type"))
        return parse_form(await read_body(request), repeatable=frozenset({"resource"}))
    return parse_qs(request.url.query, keep_blank_values=True)


async def authorization_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    try:
        params = await _request_params(request)
        client_id = single_query_value(params, "client_id")
    except InvalidRequest as exc:
        return error_page("Invalid request", exc.description)
    client = await ctx.clients.get(client_id) if client_id else None
    if client is None or not client.enabled:
        return error_page("Unknown application", "The application that sent you here is not registered.")
    try:
        redirect_uri = select_redirect_uri(client, single_query_value(params, "redirect_uri"))
    except InvalidRequest as exc:
        audit("authorization_request_refused", client_id=client.client_id, reason=exc.description)
        return error_page("Invalid redirect", f"The application sent an invalid request: {exc.description}.")
    state = params.get("state", [None])[0] if len(params.get("state", [])) == 1 else None
    try:
        # RFC 9700 §2.1.1: the client's policy may relax PKCE, only for a confidential client
        # sending a nonce with `openid` (pkce_required decides; public clients always need it).
        valid = validate_authorization_request(
            params, client, redirect_uri, relax_pkce=lambda _: client.pkce_optional_with_nonce
        )
    except InvalidRedirectUri as exc:  # pragma: no cover - redirect URI checked above
        return error_page("Invalid redirect", exc.description)
    except OAuthError as exc:
        return redirect_error(ctx, redirect_uri, exc, state)
    browser = await load_session(ctx, request)
    response = Response(status_code=303, headers=dict(PAGE_HEADERS))
    row = _request_row(ctx, browser, valid)
    if browser is None:
        if "none" in valid.prompt:
            return redirect_error(ctx, redirect_uri, LoginRequired("the user is not logged in"), valid.state)
        browser = await start_session(ctx, response, None, new_request=row)
    else:
        await pending_requests.insert(ctx.database, row)
    return await advance(ctx, browser, row.id, response)


def _request_row(
    ctx: ServerContext, browser: BrowserSession | None, valid: AuthorizationRequest
) -> AuthorizationRequestRow:
    """The pending request, kept server-side while the user logs in and consents (a session
    started for it fills in `session_hash`)."""
    now = int(time.time())
    return AuthorizationRequestRow(
        id=secrets.token_urlsafe(24),
        session_hash=browser.id_hash if browser is not None else "",
        client_id=valid.client_id,
        redirect_uri=valid.redirect_uri,
        scope=" ".join(valid.scope),
        state=valid.state,
        nonce=valid.nonce,
        code_challenge=valid.code_challenge,
        prompt=" ".join(sorted(valid.prompt)),
        max_age=valid.max_age,
        login_hint=valid.login_hint,
        created_at=now,
        expires_at=now + ctx.settings.session_idle_lifetime,
        acr_values=" ".join(valid.acr_values) or None,
        kind=pending_requests.AUTHORIZATION,
        user_code=None,
    )


async def pending_request(
    ctx: ServerContext, browser: BrowserSession, request_id: str
) -> AuthorizationRequestRow | None:
    return await pending_requests.get(ctx.database, request_id, browser.id_hash, int(time.time()))


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


async def advance(
    ctx: ServerContext, browser: BrowserSession, request_id: str, response: Response | None = None
) -> Response:
    """The next step of a pending request: login, consent, or the redirect with the code."""
    response = response or Response(status_code=303, headers=dict(PAGE_HEADERS))
    pending = await pending_request(ctx, browser, request_id)
    if pending is None:
        return error_page("Request expired", "This sign-in request has expired. Return to the application and retry.")
    client = await ctx.clients.get(pending.client_id)
    if client is None or not client.enabled:
        return error_page("Unknown application", "The application is no longer registered.")
    prompt = pending.prompt.split()
    now = int(time.time())
    user, granted = None, frozenset[str]()
    if browser.sub:
        user_row, granted = await consents.user_and_consent(ctx.database, browser.sub, client.client_id)
        user = None if user_row is None else users.User.from_row(user_row)
    if user is None or not user.enabled or _needs_login(browser, pending, now):
        if "none" in prompt:
            return await _finish_error(ctx, pending, LoginRequired("the user must log in"))
        response.headers["location"] = f"/login?request={request_id}"
        return response
    if pending.kind == pending_requests.DEVICE:
        # RFC 8628 §3.3, §5.4: a device code is always approved on its own consent page.
        response.headers["location"] = f"/device/consent?request={request_id}"
        return response
    requested = frozenset(pending.scope.split())
    if not requested <= granted or "consent" in prompt:
        if "none" in prompt:
            return await _finish_error(ctx, pending, ConsentRequired("the user has not consented to this scope"))
        response.headers["location"] = f"/consent?request={request_id}"
        return response
    return await issue_code(ctx, browser, pending, client, response)


async def _finish_error(ctx: ServerContext, pending: AuthorizationRequestRow, error: OAuthError) -> Response:
    await pending_requests.end(ctx.database, pending.id)
    return redirect_error(ctx, pending.redirect_uri, error, pending.state)


async def deny(ctx: ServerContext, pending: AuthorizationRequestRow, error: OAuthError) -> Response:
    return await _finish_error(ctx, pending, error)


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
        return error_page("Not signed in", "Sign in again.")
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
    purge = ctx.purge_due(now)
    # One transaction: the consent just approved (merged into what was granted before, so two
    # tabs approving at once both succeed), the code, the end of its pending request and, once a
    # minute, the sweep of codes an hour past expiry and of expired requests.
    async with transaction(ctx.database) as tx:
        if consented:
            await consents.merge(tx, browser.sub, client.client_id, tuple(pending.scope.split()), now)
        await codes.insert(tx, row)
        await pending_requests.end(tx, pending.id)
        if purge:
            await codes.purge(tx, now - 3600)
            await pending_requests.purge(tx, now)
    audit("authorization_code_issued", client_id=client.client_id, sub=browser.sub, scope=pending.scope)
    response.headers["location"] = success_response_uri(
        pending.redirect_uri, code=code, state=pending.state, issuer=ctx.issuer
    )
    return response


async def resume_endpoint(request: Request) -> Response:
    """`GET /authorize/resume?request=ID`: continue a pending request after a page step."""
    ctx: ServerContext = request.app.state.ctx
    browser = await load_session(ctx, request)
    request_id = request.query_params.get("request", "")
    if browser is None or not request_id:
        return error_page("Session expired", "Your session has expired. Return to the application and retry.")
    return await advance(ctx, browser, request_id)
