"""The published JWK Set (RFC 7517 §5): pending, active and still-needed retired keys."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.server.context import ServerContext

# Resource servers may cache for five minutes: a new key is pre-published for longer than that,
# and an unknown kid makes a well-behaved validator refetch anyway.
JWKS_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=60"


async def jwks_endpoint(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    body = await ctx.keyring.jwks_body()
    return Response(body, media_type="application/jwk-set+json", headers={"cache-control": JWKS_CACHE_CONTROL})
