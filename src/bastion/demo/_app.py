"""The demo notes API: every guard control in one small multi-tenant FastAPI service.

Controls, and where they are: bearer tokens from trusted issuers only (`Guard.require`), deny
by default (`Guard.check_routes` at creation and start-up), scopes AND roles (`require(...,
permissions=...)`), object-level rules against BOLA (`POLICY.check`, `POLICY.filter`), admin
functions behind an admin permission against BFLA (`/admin/...`), API keys for systems only
(`/integrations/...`), input models refusing server-owned fields, output models per role, body
and JSON-depth limits, security headers, request ids, and a hash-chained audit trail.
"""

# No `from __future__ import annotations`: FastAPI evaluates the Annotated dependencies below,
# which refer to objects local to create_app.
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.middleware import Middleware
from starlette.responses import Response

from bastion.demo._data import DEMO_USERS, DemoUser, Note, NoteStore, seed_notes
from bastion.demo._docs import docs_page, docs_script, docs_stylesheet
from bastion.demo._models import MeOut, NoteAdminOut, NoteIn, NoteOut, NotePatch, PurgeOut, StatsOut
from bastion.guard import (
    RBAC,
    Authenticator,
    Denylist,
    GuardError,
    IssuerConfig,
    ObjectPolicy,
    Principal,
    RequestGuard,
    RequestIdMiddleware,
    RevocationFeed,
    TrustedIssuer,
    has_permission,
    is_owner,
    same_tenant,
)
from bastion.guard.apikeys import ApiKeyManager
from bastion.guard.audit import AuditLog
from bastion.guard.body import BodyLimitMiddleware
from bastion.guard.dependencies import Guard
from bastion.guard.headers import SecurityHeadersMiddleware
from bastion.guard.models import RoleViews
from bastion.guard.policy import all_of, any_of
from bastion.guard.request_id import request_id_of
from bastion.ratelimit import RateLimiter, RateLimitMiddleware

__all__ = ["ROLES", "SCOPES", "create_app", "scopes_for"]

SCOPES = {
    "notes:read": "Read your notes",
    "notes:write": "Create, change and delete your notes",
    "notes:admin": "Administer your tenant's notes (admins only)",
    "notes:stats": "Read aggregate counts (integrations, with an API key)",
}

ROLES = {
    "member": ["notes:read", "notes:write"],
    "admin": ["notes:read", "notes:write", "notes:admin"],
}


def scopes_for(person: DemoUser) -> tuple[str, ...]:
    """The scopes a person's token needs for everything their role allows (admin, else member)."""
    return tuple(ROLES["admin" if "admin" in person.roles else "member"])


def create_app(
    issuers: Sequence[IssuerConfig] = (),
    *,
    static_issuers: Sequence[tuple[TrustedIssuer, Mapping[str, Any]]] = (),
    directory: Mapping[str, DemoUser] | None = None,
    seed: bool = False,
    seed_owners: Mapping[str, str] | None = None,
    api_keys: ApiKeyManager | None = None,
    audit: AuditLog | None = None,
    limiter: RateLimiter | None = None,
    denylist: Denylist | None = None,
    revocation_feeds: Sequence[RevocationFeed] = (),
    http: httpx.AsyncClient | None = None,
    trusted_proxies: Sequence[str] = (),
    realm: str = "bastion-demo",
    max_body_bytes: int = 64 * 1024,
    max_json_depth: int = 16,
) -> FastAPI:
    """The demo API, trusting `issuers` (by discovery URL and audience).

    Args:
        issuers: trusted issuers; tokens from any other issuer are refused.
        static_issuers: issuers given with their JWKS directly (no discovery).
        directory: the application's own knowledge of people, by token `sub`: tenant and
            extra roles (in development, the seeded users). Unknown people are members of
            the "default" tenant; a token's `tenant` claim and `roles` claim also count.
            Defaults to DEMO_USERS when `seed` is set.
        seed: add demo notes (development mode only).
        seed_owners: demo name -> token subject owning that name's seeded notes.
        api_keys: enables `/integrations/*` for systems holding an API key.
        audit: where security-relevant actions are recorded.
        limiter: optional rate limiting (bastion.ratelimit) in front of the API.
        denylist, revocation_feeds: the authorization server's revocations, polled in the
            background (`bastion.guard.revocation`: RedisRevocationSync or
            HttpRevocationPoller built on this same denylist).
        trusted_proxies: addresses or networks of the proxies whose X-Request-ID is kept
            (default none: every request id is made here). Mounted inside an app that
            already gives request ids (`bastion serve`), the outer id is kept.
    """
    people = dict(directory if directory is not None else DEMO_USERS if seed else {})
    store = NoteStore()
    if seed:
        seed_notes(store, seed_owners)

    def user_of(principal: Principal) -> DemoUser | None:
        return people.get(principal.subject) if principal.kind == "user" else None

    def tenant_of(principal: Principal) -> str | None:
        if principal.kind != "user":
            return None
        claim = principal.token.claims.get("tenant") if principal.token else None
        if isinstance(claim, str) and claim:
            return claim
        user = user_of(principal)
        return user.tenant if user else "default"

    def roles_of(principal: Principal) -> frozenset[str]:
        if principal.kind != "user":
            return frozenset()
        user = user_of(principal)
        return frozenset({"member"}) | (user.roles if user else frozenset())

    rbac = RBAC.from_mapping(ROLES, lookup=roles_of)
    in_tenant = same_tenant(tenant_of)
    policy = ObjectPolicy(
        {
            "read": all_of(in_tenant, any_of(is_owner(), has_permission(rbac, "notes:admin"))),
            "update": all_of(in_tenant, is_owner()),
            "delete": all_of(in_tenant, any_of(is_owner(), has_permission(rbac, "notes:admin"))),
        }
    )
    views = RoleViews(NoteOut, [("admin", NoteAdminOut)], rbac=rbac)
    authenticator = Authenticator(
        issuers,
        static_issuers=static_issuers,
        http=http,
        denylist=denylist,
        revocation_feeds=revocation_feeds,
    )
    guard = Guard(RequestGuard(authenticator, rbac=rbac, api_keys=api_keys, realm=realm, audit=audit))

    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(RequestIdMiddleware, trusted_proxies=trusted_proxies),
        Middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, max_depth=max_json_depth),
    ]
    if limiter is not None:
        middleware.append(Middleware(RateLimitMiddleware, limiter=limiter))
    app = FastAPI(
        title="Bastion demo: notes",
        version="1.0.0",
        description="A multi-tenant notes API protected by bastion.guard.",
        docs_url=None,
        redoc_url=None,
        middleware=middleware,
    )
    guard.install(app)

    def record(request: Request, principal: Principal | None, action: str, obj: str | None, outcome: str) -> None:
        if audit is not None:
            request_id = request_id_of(request.scope)
            audit.record(action, principal=principal, outcome=outcome, object=obj, request_id=request_id)

    def load(request: Request, principal: Principal, action: str, note_id: str) -> Note:
        try:
            return policy.check(principal, action, store.get(note_id))
        except GuardError:
            record(request, principal, f"note.{action}", f"note:{note_id}", "denied")
            raise

    users = ["user"]
    Reader = Annotated[Principal, guard.require("notes:read", permissions=["notes:read"], kinds=users)]  # noqa: N806 - a type alias, named like one
    Writer = Annotated[Principal, guard.require("notes:write", permissions=["notes:write"], kinds=users)]  # noqa: N806 - a type alias, named like one
    Admin = Annotated[Principal, guard.require("notes:admin", permissions=["notes:admin"], kinds=users)]  # noqa: N806 - a type alias, named like one
    System = Annotated[Principal, guard.require("notes:stats", accept=["api_key"])]  # noqa: N806 - a type alias, named like one
    api_key_security: dict[str, Any] = {"security": [{"apiKey": []}]}
    note_views: dict[int | str, dict[str, Any]] = {200: {"model": NoteOut | NoteAdminOut}}

    @app.get("/health", dependencies=[guard.public()], openapi_extra={"security": []})
    async def health() -> dict[str, str]:
        """Liveness; public."""
        return {"status": "ok"}

    @app.get("/me", response_model=MeOut)
    async def me(principal: Reader) -> MeOut:
        """Who the API thinks you are."""
        return MeOut(
            kind=principal.kind,
            subject=principal.subject,
            tenant=tenant_of(principal),
            roles=sorted(rbac.roles_of(principal)),
            scopes=sorted(principal.scopes),
        )

    @app.get("/notes", response_model=None, responses={200: {"model": list[NoteOut] | list[NoteAdminOut]}})
    async def list_notes(principal: Reader) -> list[dict[str, Any]]:
        """Your notes (a tenant admin sees the tenant's notes)."""
        visible = policy.filter(principal, "read", store.all())
        return views.dump_all(principal, sorted(visible, key=lambda n: n.created_at))

    @app.post("/notes", status_code=201, response_model=None, responses={201: {"model": NoteOut | NoteAdminOut}})
    async def create_note(request: Request, principal: Writer, note: NoteIn) -> dict[str, Any]:
        """Create a note; the server sets its id, owner, tenant and times."""
        tenant = tenant_of(principal) or "default"
        created = store.add(tenant, principal.subject, note.title, note.body)
        record(request, principal, "note.create", f"note:{created.id}", "allowed")
        return views.dump(principal, created)

    @app.get("/notes/{note_id}", response_model=None, responses=note_views)
    async def read_note(request: Request, principal: Reader, note_id: str) -> dict[str, Any]:
        """One note, if you may read it (else 404, as if it did not exist)."""
        return views.dump(principal, load(request, principal, "read", note_id))

    @app.patch("/notes/{note_id}", response_model=None, responses=note_views)
    async def update_note(request: Request, principal: Writer, note_id: str, patch: NotePatch) -> dict[str, Any]:
        """Change your note's title or body."""
        note = load(request, principal, "update", note_id)
        updated = store.update(note, title=patch.title, body=patch.body)
        record(request, principal, "note.update", f"note:{note_id}", "allowed")
        return views.dump(principal, updated)

    @app.delete("/notes/{note_id}", status_code=204)
    async def delete_note(request: Request, principal: Writer, note_id: str) -> None:
        """Delete your note (a tenant admin may delete any note of the tenant)."""
        load(request, principal, "delete", note_id)
        store.delete(note_id)
        record(request, principal, "note.delete", f"note:{note_id}", "allowed")

    @app.get("/admin/notes", response_model=list[NoteAdminOut])
    async def admin_notes(request: Request, principal: Admin) -> list[dict[str, Any]]:
        """Every note of your tenant, with owners (admin permission AND admin scope)."""
        tenant = tenant_of(principal)
        notes = [n for n in store.all() if n.tenant == tenant]
        record(request, principal, "admin.notes.list", f"tenant:{tenant}", "allowed")
        return [NoteAdminOut.model_validate(n).model_dump(mode="json") for n in notes]

    @app.delete("/admin/users/{subject}/notes", response_model=PurgeOut)
    async def purge_user(request: Request, principal: Admin, subject: str) -> PurgeOut:
        """Delete every note a user owns in your tenant."""
        tenant = tenant_of(principal) or "default"
        deleted = store.delete_owned(tenant, subject)
        record(request, principal, "admin.notes.purge", f"user:{subject}", "allowed")
        return PurgeOut(deleted=deleted)

    @app.get("/integrations/stats", response_model=StatsOut, openapi_extra=api_key_security)
    async def stats(request: Request, principal: System) -> StatsOut:
        """Aggregate counts for a calling system (API key with notes:stats); no note content."""
        notes = store.all()
        record(request, principal, "integrations.stats", None, "allowed")
        return StatsOut(notes=len(notes), tenants=len({n.tenant for n in notes}))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RFC 9068)"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override

    # Interactive docs from the document above, without a CDN (`_docs`); public like the document.
    @app.get("/docs", dependencies=[guard.public()], include_in_schema=False)
    async def docs() -> Response:
        return docs_page(app.openapi(), SCOPES)

    @app.get("/docs.js", dependencies=[guard.public()], include_in_schema=False)
    async def docs_js() -> Response:
        return docs_script()

    @app.get("/docs.css", dependencies=[guard.public()], include_in_schema=False)
    async def docs_css() -> Response:
        return docs_stylesheet()

    # Deny by default now, not only at lifespan start-up: a mounted sub-app gets no lifespan.
    guard.check_routes(app)
    app.state.store = store
    app.state.authenticator = authenticator
    return app
