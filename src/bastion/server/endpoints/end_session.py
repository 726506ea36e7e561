"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `end_session_endpoint`.

GET shows a confirmation form (CSRF-protected); POST ends the browser session and redirects to
the `post_logout_redirect_uri` only when it is registered for the client named by the verified
`id_token_hint` (or `client_id`): one of the client's registered post-logout redirect URIs
(§3), matched exactly. Its authorization redirect URIs do not count: they are a different
registration (`clients create --post-logout-redirect-uri`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import sessions
from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose import HEADER_CHECKS, parse_compact
from bastion.protocol.oidc import ID_TOKEN_HINT_CHECKS
from bastion.protocol.rfc6749.authorization import response_uri
from bastion.protocol.rfc6749.params import check_content_type, parse_form, single
from bastion.server.browser import end_session, load_session
from bastion.server.context import ServerContext
from bastion.server.endpoints.authorize import see_other
from bastion.server.pages import error_page, render
from bastion.server.responses import read_body
from bastion.server.tokens import own_key


async def read_id_token_hint(ctx: ServerContext, token: str) -> dict[str, Any] | None:
    """Our own ID token, signature and issuer checked; expiry is not (the spec allows expired hints)."""
    try:
        jws = parse_compact(token)
        for header_check in HEADER_CHECKS:
            header_check(jws.header)
        # Unverified until the signature below, but a refusal here costs no key lookup.
        for check in ID_TOKEN_HINT_CHECKS:
            check(jws.header, jws.claims, ctx.issuer)
    except InvalidToken:
        return None
    key = await own_key(ctx, jws.header.get("kid"))
    if key is None or not key.verify(jws.header["alg"], jws.signing_input, jws.signature):
        return None
    return jws.claims


async def _allowed_redirect(
    ctx: ServerContext, params: dict[str, list[str]]
) -> tuple[str | None, str | None, str | None]:
    """(post_logout_redirect_uri if registered for the client, client name, client_id)."""
    hint = single(params, "id_token_hint")
    client_id = single(params, "client_id")
    if hint is not None:
        claims = await read_id_token_hint(ctx, hint)
        if claims is None:
            return None, None, None
        audience = claims.get("aud")
        hinted = audience if isinstance(audience, str) else None
        if client_id is not None and client_id != hinted:
            return None, None, None
        client_id = hinted
    client = await ctx.clients.get(client_id) if client_id else None
    if client is None:
        return None, None, None
    uri = single(params, "post_logout_redirect_uri")
    return (uri if uri in client.post_logout_redirect_uris else None), client.name, client.client_id


async def end_session_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    params: dict[str, list[str]] = {k: request.query_params.getlist(k) for k in request.query_params}
    uri, client_name, client_id = await _allowed_redirect(ctx, params)
    if single(params, "post_logout_redirect_uri") is not None and uri is None:
        return error_page("Invalid logout request", "The post_logout_redirect_uri is not registered for this client.")
    browser = await load_session(ctx, request)
    if browser is None:
        if uri is not None:
            return see_other(response_uri(uri, {"state": single(params, "state")}))
        return render("logged_out.html", title="Signed out")
    return render(
        "logout.html",
        title="Sign out",
        client_name=client_name or "",
        csrf_token=browser.csrf_token,
        post_logout_redirect_uri=uri or "",
        state=single(params, "state") or "",
        client_id=client_id or "",
    )


async def end_session_submit(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    check_content_type(request.headers.get("content-type"))
    form = parse_form(await read_body(request))
    browser = await load_session(ctx, request)
    if browser is None:
        return render("logged_out.html", title="Signed out")
    if not sessions.csrf_matches(browser.csrf_token, single(form, "csrf_token")):
        return error_page("Form expired", "The form was not valid (missing or wrong CSRF token).", 403)
    uri = single(form, "post_logout_redirect_uri")
    client_id = single(form, "client_id")
    client = await ctx.clients.get(client_id) if client_id else None
    if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
        uri = None
    response = (
        see_other(response_uri(uri, {"state": single(form, "state")}))
        if uri
        else render("logged_out.html", title="Signed out")
    )
    await end_session(ctx, response, browser)
    return response
