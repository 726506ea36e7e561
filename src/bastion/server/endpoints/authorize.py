"""The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, RFC 9207, OpenID Connect Core §3.1.2).

The request is validated before anyone is asked to log in. An unknown client or a redirect URI
that does not match answers an error page with 400 and never redirects; every other error goes
back to the redirect URI with `error`, `state` and `iss`, in the response mode the request asked
for (`query` or `form_post`; an unsupported `response_mode` is answered in the query). A valid
request goes to the flow engine (`bastion.server.flow`), which finishes it at once for a
signed-in user who has consented, or stores it (bound to the browser session) and takes the
user through login, second factor and consent; `/authorize/resume` hands a pending request
back to it after a page.
"""

from __future__ import annotations

import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

from bastion.events import audit
from bastion.protocol.errors import InvalidRequest, LoginRequired, OAuthError
from bastion.protocol.oidc import parse_response_mode
from bastion.protocol.rfc6749.authorization import (
    AuthorizationRequest,
    InvalidRedirectUri,
    select_redirect_uri,
    single_query_value,
    validate_authorization_request,
)
from bastion.protocol.rfc6749.params import check_content_type, parse_form, parse_query
from bastion.server.browser import (
    BrowserSession,
    anonymous_session,
    load_session_and_request,
    load_session_with_account,
)
from bastion.server.context import ServerContext
from bastion.server.flow import advance, redirect_error
from bastion.server.pages import PAGE_HEADERS, error_page, too_many_requests_page
from bastion.server.pages.step import source_of
from bastion.server.responses import read_body
from bastion.store import pending_requests
from bastion.store.pending_requests import AuthorizationRequestRow


async def _request_params(request: Request) -> dict[str, list[str]]:
    if request.method == "POST":
        # OpenID Connect Core §3.1.2.1: POST with form serialization is supported as well.
        check_content_type(request.headers.get("content-type"))
        return parse_form(await read_body(request), repeatable=frozenset({"resource"}))
    return parse_query(request.scope["query_string"])


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
        mode = parse_response_mode(single_query_value(params, "response_mode"))
    except InvalidRequest as exc:
        # The mode asked for is unusable: the error goes back in the default mode of code, query.
        return redirect_error(ctx, redirect_uri, exc, state)
    try:
        # RFC 9700 §2.1.1: the client's policy may relax PKCE, only for a confidential client
        # sending a nonce with `openid` (pkce_required decides; public clients always need it).
        valid = validate_authorization_request(
            params, client, redirect_uri, relax_pkce=lambda _: client.pkce_optional_with_nonce
        )
    except InvalidRedirectUri as exc:  # pragma: no cover - redirect URI checked above
        return error_page("Invalid redirect", exc.description)
    except OAuthError as exc:
        return redirect_error(ctx, redirect_uri, exc, state, mode)
    # The session, its user and their consent to this client, in one statement (`check_finish`
    # uses them): a signed-in user who has consented gets a code for two statements in all.
    browser = await load_session_with_account(ctx, request, client.client_id)
    response = Response(status_code=303, headers=dict(PAGE_HEADERS))
    if browser is None:
        if "none" in valid.prompt:
            return redirect_error(ctx, redirect_uri, LoginRequired("the user is not logged in"), valid.state, mode)
        # A stranger's request stores the pending request alone, bound to a provisional
        # session's cookie, and only as often per address as the limit allows.
        refusal = await ctx.limits.admit_anonymous(source_of(request))
        if refusal is not None:
            return too_many_requests_page(refusal)
        browser = anonymous_session(ctx, request, response)
    # Stored only if a page (login, consent) continues it; a request finished now never is.
    return await advance(ctx, browser, _request_row(ctx, browser, valid, mode), response, stored=False)


def _request_row(
    ctx: ServerContext, browser: BrowserSession, valid: AuthorizationRequest, mode: str
) -> AuthorizationRequestRow:
    """The pending request, kept server-side while the user logs in and consents."""
    now = int(time.time())
    return AuthorizationRequestRow(
        id=secrets.token_urlsafe(24),
        session_hash=browser.id_hash,
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
        response_mode=mode,
    )


async def resume_endpoint(request: Request) -> Response:
    """`GET /authorize/resume?request=ID`: continue a pending request (of either kind) after a
    page step. The session and the request are read in one statement."""
    ctx: ServerContext = request.app.state.ctx
    request_id = request.query_params.get("request", "")
    browser, pending = await load_session_and_request(ctx, request, request_id)
    if browser is None or not request_id:
        return error_page("Session expired", "Your session has expired. Return to the application and retry.")
    if pending is None:
        return error_page("Request expired", "This sign-in request has expired. Return to the application and retry.")
    return await advance(ctx, browser, pending)
