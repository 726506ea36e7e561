"""The FastAPI shape: a requirement is a dependency, and every route must declare one.

guard = Guard(RequestGuard(authenticator, rbac=rbac))
guard.install(app)                      # error handler + start-up check + discovery

@app.get("/notes")
async def notes(principal: Annotated[Principal, guard.require("notes:read")]): ...

@app.get("/health", dependencies=[guard.public()])
async def health(): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount

from bastion.guard._core import RequestGuard
from bastion.guard._errors import GuardError, UnprotectedRouteError
from bastion.guard._principal import Kind, Principal
from bastion.guard.policy import PUBLIC, Credential, Requirement, require_scopes
from bastion.guard.request_id import request_id_of

__all__ = ["Guard", "GuardedRoute", "RequirementDependency"]


class RequirementDependency:
    """The callable FastAPI runs for a route's requirement; its type marks the route declared."""

    def __init__(self, guard: RequestGuard, requirement: Requirement) -> None:
        self.guard = guard
        self.requirement = requirement

    async def __call__(self, request: Request) -> Principal | None:
        checked: dict[int, Principal | None] = request.scope.setdefault("state", {}).setdefault("guard_checked", {})
        if id(self) in checked:
            return checked[id(self)]
        principal = await self.guard.check(
            self.requirement,
            request.scope["headers"],
            request.scope.get("query_string", b""),
            target=(request.method, request.url.path),
            request_id=request_id_of(request.scope),
        )
        request.state.principal = principal
        checked[id(self)] = principal
        return principal


class GuardedRoute(APIRoute):
    """An APIRoute that checks its requirements before FastAPI reads the body.

    FastAPI parses the JSON body before it resolves dependencies, so without this an
    unauthenticated caller sending broken JSON would get a 422 describing the body instead of
    a 401: credentials first, then input.
    """

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        requirements = list(_requirements(self.dependant))

        async def guarded(request: Request) -> Any:
            for requirement in requirements:
                await requirement(request)
            return await handler(request)

        return guarded


def _requirements(dependant: Any) -> Iterable[RequirementDependency]:
    call = getattr(dependant, "call", None)
    if isinstance(call, RequirementDependency):
        yield call
    for sub in getattr(dependant, "dependencies", ()):
        yield from _requirements(sub)


def _declares(dependant: Any) -> bool:
    if isinstance(getattr(dependant, "call", None), RequirementDependency):
        return True
    return any(_declares(d) for d in getattr(dependant, "dependencies", ()))


class Guard:
    """Dependencies and start-up checks for a FastAPI application."""

    def __init__(self, guard: RequestGuard) -> None:
        self.guard = guard

    def require(
        self,
        *scopes: str,
        permissions: Sequence[str] = (),
        accept: Iterable[Credential] = ("token",),
        kinds: Iterable[Kind] | None = None,
    ) -> Any:
        """A dependency that authenticates the caller and checks scopes AND permissions."""
        requirement = require_scopes(*scopes, permissions=permissions, accept=accept, kinds=kinds)
        return Depends(RequirementDependency(self.guard, requirement))

    def public(self) -> Any:
        """A dependency that marks a route as deliberately public."""
        return Depends(RequirementDependency(self.guard, PUBLIC))

    def check_routes(self, app: FastAPI) -> None:
        """Raise UnprotectedRouteError for any API route without a declared requirement.

        FastAPI's own documentation routes (openapi.json, docs) are public by construction.
        """
        missing = [
            f"{','.join(sorted(route.methods or ()))} {prefix}{route.path}"
            for prefix, route in _walk(app.routes)
            if isinstance(route, APIRoute) and not _declares(route.dependant)
        ]
        if missing:
            raise UnprotectedRouteError(
                "routes without a declared requirement (declare one or mark them public): " + ", ".join(missing)
            )

    def install(self, app: FastAPI) -> None:
        """Render refusals per RFC 6750 §3, and at start-up check routes and discover issuers.

        Call it before adding routes: routes added afterwards check credentials before
        their request body is parsed (`GuardedRoute`).
        """

        async def handle(request: Request, exc: Exception) -> JSONResponse:
            if not isinstance(exc, GuardError):  # pragma: no cover - registered for GuardError
                raise exc
            rendered = self.guard.render(exc)
            return JSONResponse(
                rendered.body,
                status_code=rendered.status_code,
                headers={**dict(rendered.headers), "Cache-Control": "no-store"},
            )

        app.add_exception_handler(GuardError, handle)
        # Routes added from now on check credentials before their body is parsed.
        app.router.route_class = GuardedRoute
        original = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(inner: Any) -> AsyncIterator[Any]:
            self.check_routes(app)
            await self.guard.authenticator.start()
            try:
                async with original(inner) as state:
                    yield state
            finally:
                await self.guard.authenticator.aclose()

        app.router.lifespan_context = lifespan


def _walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterable[tuple[str, BaseRoute]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        else:
            yield prefix, route
