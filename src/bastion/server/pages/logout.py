"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `end_session_endpoint`.

GET shows a confirmation form (CSRF-protected); POST ends the browser session and redirects to
the `post_logout_redirect_uri` only when it is registered for the client named by the verified
`id_token_hint` (or `client_id`): one of the client's registered post-logout redirect URIs
(§3), matched exactly. Its authorization redirect URIs do not count: they are a different
registration (`clients create --post-logout-redirect-uri`). Without a session there is nothing
to end: both answer that the browser is signed out.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.protocol.errors import InvalidToken
from bastion.protocol.jose import HEADER_CHECKS, parse_compact
from bastion.protocol.oidc import ID_TOKEN_HINT_CHECKS
from bastion.protocol.rfc6749.authorization import response_uri
from bastion.protocol.rfc6749.params import single
from bastion.server.browser import end_session, load_session
from bastion.server.context import ServerContext
from bastion.server.pages import error_page, render, see_other
from bastion.server.pages.step import Needs, Page, with_page
from bastion.server.tokens import own_key

signed_out = partial(render, "logged_out.html", title="Signed out")
LOGOUT = Needs(
    post=True,
    expired=signed_out,
    forbidden=partial(error_page, "Form expired", "The form was not valid (missing or wrong CSRF token).", 403),
)


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
    """`GET /logout`: the confirmation form, or (without a session) the signed-out answer."""
    ctx: ServerContext = request.app.state.ctx
    params: dict[str, list[str]] = {k: request.query_params.getlist(k) for k in request.query_params}
    uri, client_name, client_id = await _allowed_redirect(ctx, params)
    if single(params, "post_logout_redirect_uri") is not None and uri is None:
        return error_page("Invalid logout request", "The post_logout_redirect_uri is not registered for this client.")
    browser = await load_session(ctx, request)
    if browser is None:
        if uri is not None:
            return see_other(response_uri(uri, {"state": single(params, "state")}))
        return signed_out()
    return render(
        "logout.html",
        title="Sign out",
        client_name=client_name or "",
        csrf_token=browser.csrf_token,
        post_logout_redirect_uri=uri or "",
        state=single(params, "state") or "",
        client_id=client_id or "",
    )


@with_page(LOGOUT)
async def end_session_submit(page: Page) -> Response:
    """`POST /logout`: end the session; redirect only to a URI registered for the named client."""
    uri = page.field("post_logout_redirect_uri")
    client_id = page.field("client_id")
    client = await page.ctx.clients.get(client_id) if client_id else None
    if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
        uri = None
    response = see_other(response_uri(uri, {"state": page.field("state")})) if uri else signed_out()
    await end_session(page.ctx, response, page.browser)
    return response


__all__ = ["end_session_endpoint", "end_session_submit", "read_id_token_hint"]
