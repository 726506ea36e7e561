"""The UserInfo endpoint (OpenID Connect Core §5.3), GET and POST.

It accepts only our RFC 9068 access tokens that carry `openid`, validated by the same rules as
every resource server's (`bastion.protocol.rfc9068`): an ID token presented as an access token
is refused here as everywhere else. The token comes in the Authorization header or, in a POST,
the form body (RFC 6750 §2.2), never both; refusals are RFC 6750 §3 challenges
(`bastion.protocol.rfc6750`), as the guard answers them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import users
from bastion.protocol.errors import InsufficientScope, InvalidToken, OAuthError
from bastion.protocol.oidc import scope_claims
from bastion.protocol.rfc6749.params import parse_form, single
from bastion.protocol.rfc6750 import FORM_PARAMETER, extract_credentials, render_error
from bastion.server.access_log import note
from bastion.server.context import ServerContext
from bastion.server.issuance import user_claims
from bastion.server.metrics import count_token_failure
from bastion.server.responses import NO_STORE, json_response, read_body
from bastion.server.tokens import read_access_token

REALM = "bastion"
ENDPOINT = "/userinfo"
_FORM = "application/x-www-form-urlencoded"


async def _form_token(request: Request) -> str | None:
    """RFC 6750 §2.2: the `access_token` body parameter of a form-encoded, non-GET request."""
    if request.method != "POST" or not request.headers.get("content-type", "").startswith(_FORM):
        return None
    return single(parse_form(await read_body(request)), FORM_PARAMETER)


async def _userinfo(ctx: ServerContext, request: Request) -> dict[str, object]:
    """The claims for the token the request presents.

    Raises:
        OAuthError: the RFC 6750 refusal (missing, malformed, invalid or revoked token, or
            no `openid` scope) or an invalid request (a token sent two ways, a bad body).
    """
    bearer, _ = extract_credentials(
        request.scope["headers"], request.scope.get("query_string", b""), form_token=await _form_token(request)
    )
    if not bearer:
        count_token_failure(ENDPOINT, "missing")
        raise InvalidToken("not an active access token of ours")
    access = await read_access_token(ctx, bearer, endpoint=ENDPOINT)
    if access is None:
        raise InvalidToken("not an active access token of ours")
    if await ctx.denylist.is_revoked(str(access.jti)):
        count_token_failure(ENDPOINT, "revoked")
        raise InvalidToken("not an active access token of ours")
    note(request.scope, client_id=access.claims.get("client_id"), sub=access.subject)
    scope = str(access.claims.get("scope", "")).split()
    if "openid" not in scope:
        count_token_failure(ENDPOINT, "insufficient_scope")
        raise InsufficientScope(("openid",), detail="no openid scope")
    user = await users.get_user(ctx.database, access.subject)
    if user is None or not user.enabled:
        count_token_failure(ENDPOINT, "unknown_user")
        raise InvalidToken("unknown or disabled user")
    return {"sub": user.sub, **scope_claims(user_claims(user), scope)}


async def userinfo_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    try:
        body = await _userinfo(ctx, request)
    except OAuthError as error:
        refusal = render_error(error, realm=REALM, token_endpoints=[ctx.endpoint("/token")])
        headers = {**NO_STORE, **{name.lower(): value for name, value in refusal.headers}}
        return json_response(refusal.body, refusal.status_code, headers)
    return json_response(body, headers=NO_STORE)
