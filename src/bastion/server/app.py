"""The authorization server as a Starlette application.

It serves only the server's own endpoints; whoever builds the served app (`bastion.asgi`) may
mount more next to them (the example API in development mode) and start it once the server's
context is open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bastion.config import Settings
from bastion.events import configure_logging
from bastion.guard import RequestIdMiddleware
from bastion.keys import startup
from bastion.protocol.errors import OAuthError
from bastion.server import metrics
from bastion.server.access_log import AccessLogMiddleware
from bastion.server.admin_api import ADMIN_ROUTES
from bastion.server.audit_trail import AuditTrail
from bastion.server.context import ServerContext, build_context
from bastion.server.cors import CORSMiddleware
from bastion.server.endpoints.device_authorization import device_authorization_endpoint
from bastion.server.endpoints.health import live_endpoint, ready_endpoint
from bastion.server.endpoints.introspection import introspection_endpoint
from bastion.server.endpoints.jwks import jwks_endpoint
from bastion.server.endpoints.metadata import oauth_metadata_endpoint, openid_configuration_endpoint
from bastion.server.endpoints.revocation import revocation_endpoint, revocation_list_endpoint
from bastion.server.endpoints.token import TokenRouteMiddleware, token_endpoint
from bastion.server.endpoints.userinfo import userinfo_endpoint
from bastion.server.limits import RateLimited, ServerLimits, build_limiter
from bastion.server.limits import middleware as limit_middleware
from bastion.server.pages.branding import BrandingMiddleware, branding_of
from bastion.server.pages.routes import PAGE_ROUTES
from bastion.server.responses import RequestContextMiddleware, oauth_error_handler, rate_limited_json
from bastion.server.sweeper import sweep_forever
from bastion.store import Database


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RateLimited):  # pragma: no cover - registered for RateLimited only
        raise exc
    return rate_limited_json(exc)


ROUTES = [
    Route("/token", token_endpoint, methods=["POST"]),
    Route("/jwks", jwks_endpoint, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", oauth_metadata_endpoint, methods=["GET"]),
    Route("/.well-known/openid-configuration", openid_configuration_endpoint, methods=["GET"]),
    Route("/introspect", introspection_endpoint, methods=["POST"]),
    Route("/revoke", revocation_endpoint, methods=["POST"]),
    Route("/revocations", revocation_list_endpoint, methods=["GET"]),
    Route("/health", live_endpoint, methods=["GET"]),
    Route("/health/live", live_endpoint, methods=["GET"]),
    Route("/health/ready", ready_endpoint, methods=["GET"]),
    Route("/device_authorization", device_authorization_endpoint, methods=["POST"]),
    Route("/userinfo", userinfo_endpoint, methods=["GET", "POST"]),
    *PAGE_ROUTES,
    *ADMIN_ROUTES,
]


async def open_context(settings: Settings, limits: ServerLimits | None = None) -> ServerContext:
    """Connect, migrate (SQLite) or check migrations (PostgreSQL), and load secrets and keys."""
    database = Database(settings.resolved_database_url, timeout=settings.database_timeout_seconds)
    await database.check_reachable()
    if database.is_sqlite:
        await database.upgrade()
    else:
        await database.require_migrated()
    encryptor = startup.key_encryptor(settings)
    pepper = startup.client_secret_pepper(settings)
    await startup.prepare_signing_keys(settings, database, encryptor)
    return build_context(settings, database, encryptor, pepper, limits)


def _edge_middleware(settings: Settings) -> list[Middleware]:
    """The request id, then (behind a proxy) the forwarded client address and scheme.

    The request id comes first: it believes an incoming X-Request-ID only from the peer that
    connected when that peer is a trusted proxy, and `ProxyHeadersMiddleware` (uvicorn's, applied
    here rather than by the server process) then replaces that peer with the client the proxy
    names in X-Forwarded-For, and the scheme with X-Forwarded-Proto (RFC 9700 §4.13: forwarded
    headers only from the proxies configured).
    """
    if not settings.behind_proxy:
        return [Middleware(RequestIdMiddleware)]
    proxies = list(settings.trusted_proxies)
    return [
        Middleware(RequestIdMiddleware, trusted_proxies=proxies),
        Middleware(ProxyHeadersMiddleware, trusted_hosts=proxies),
    ]


def _observing_middleware(settings: Settings, routes: metrics.RouteNames) -> list[Middleware]:
    """Request metrics, and the access log when one is configured: outside everything but the
    edge, so they see every answer (429s and shed 503s included) and the forwarded client."""
    observing = [Middleware(metrics.RequestMetricsMiddleware, routes=routes)]
    if settings.access_log != "off":
        observing.append(Middleware(AccessLogMiddleware, target=settings.access_log, routes=routes))
    return observing


def create_app(
    settings: Settings,
    ctx: ServerContext | None = None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    on_startup: Callable[[ServerContext], Awaitable[None]] | None = None,
) -> Starlette:
    """The ASGI app.

    Args:
        settings: the server's settings.
        ctx: an already opened context to share (tests, CLI); without one the app opens its own
            at start-up and closes it at shutdown.
        extra_routes: routes served after the server's own (e.g. a `Mount` of another app).
        on_startup: awaited at start-up with the opened context, before requests are served.
    """
    configure_logging(settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = ctx is None
        app.state.ctx = ctx if ctx is not None else await open_context(settings, limits)
        # Expired rows are swept by every process for as long as it serves (`sweeper`).
        sweeper = asyncio.create_task(sweep_forever(app.state.ctx))
        publisher = asyncio.create_task(metrics.publish_forever(app.state.ctx))
        # Security events reach the database's hash-chained trail in batches (`audit_trail`).
        trail = AuditTrail(app.state.ctx.database, settings.issuer)
        trail.attach()
        writer = asyncio.create_task(trail.run())
        try:
            if on_startup is not None:
                await on_startup(app.state.ctx)
            yield
        finally:
            for task in (sweeper, publisher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # Not cancelled: a batch being written would be lost. Closing ends the writer after
            # its write under way and writes what is queued before the database closes.
            await trail.close()
            await writer
            if owned:
                await app.state.ctx.close()

    routes = [*ROUTES, *extra_routes]
    if settings.metrics_enabled:
        routes.append(metrics.metrics_endpoint(settings.metrics_clients))
    route_names = metrics.RouteNames(routes)
    limits = ctx.limits if ctx is not None else ServerLimits(build_limiter(settings))
    app = Starlette(
        routes=routes,
        middleware=[
            *_edge_middleware(settings),
            *_observing_middleware(settings, route_names),
            Middleware(RequestContextMiddleware),
            Middleware(CORSMiddleware),
            Middleware(BrandingMiddleware, branding=branding_of(settings.pages)),
            *limit_middleware(settings, limits.limiter),
            # POST /token skips the router and the Request object; every other request passes.
            Middleware(TokenRouteMiddleware),
        ],
        exception_handlers={OAuthError: oauth_error_handler, RateLimited: rate_limited_handler},
        lifespan=lifespan,
    )
    if ctx is not None:
        app.state.ctx = ctx
    return app
