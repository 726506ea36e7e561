"""The UserInfo endpoint (OpenID Connect Core §5.3), GET and POST.

It accepts only our RFC 9068 access tokens (`typ: at+jwt`) that carry `openid`; an ID token
(`typ: JWT`) presented as an access token is rejected here as everywhere else. Errors follow
RFC 6750 §3 with a `WWW-Authenticate: Bearer` challenge.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.identity import users
from bastion.protocol.oidc import scope_claims
from bastion.protocol.rfc6749.params import parse_form, single
from bastion.server.context import ServerContext
from bastion.server.issuance import user_claims
from bastion.server.responses import NO_STORE, json_response, read_body
from bastion.server.tokens import read_access_token


def _challenge(error: str, description: str, status: int) -> Response:
    headers = dict(NO_STORE)
    headers["www-authenticate"] = f'Bearer realm="bastion", error="{error}", error_description="{description}"'
    return json_response({"error": error, "error_description": description}, status, headers)


async def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        # RFC 6750 §2.2: the form-encoded body parameter.
        return single(parse_form(await read_body(request)), "access_token")
    return None


async def userinfo_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    token = await _bearer(request)
    if token is None:
        headers = dict(NO_STORE)
        headers["www-authenticate"] = 'Bearer realm="bastion"'
        return Response(status_code=401, headers=headers)
    claims = await read_access_token(ctx, token)
    if claims is None or await ctx.is_revoked(str(claims["jti"])):
        return _challenge("invalid_token", "the access token is invalid, expired or revoked", 401)
    scope = str(claims.get("scope", "")).split()
    if "openid" not in scope:
        return _challenge("insufficient_scope", "the access token lacks the openid scope", 403)
    user = await users.get_user(ctx.database, str(claims.get("sub")))
    if user is None or not user.enabled:
        return _challenge("invalid_token", "the access token is invalid, expired or revoked", 401)
    body = {"sub": user.sub, **scope_claims(user_claims(user), scope)}
    return json_response(body, headers=NO_STORE)
