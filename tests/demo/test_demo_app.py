"""The demo application in-process: its OpenAPI document, seeding, and mounting at /demo."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from bastion.demo import DEMO_USERS, create_app
from bastion.guard import TrustedIssuer
from tests.demo.conftest import DEMO_AUDIENCE
from tests.guard._issuer import TestIssuer

pytestmark = pytest.mark.anyio
ISSUER = TestIssuer("https://issuer.demo.test")


def app(seed: bool) -> Starlette:
    """The demo trusting the test issuer, behind a proxy on loopback (httpx's ASGI client address)."""
    issuers = [(TrustedIssuer(ISSUER.issuer, DEMO_AUDIENCE), ISSUER.public_jwks())]
    return create_app(static_issuers=issuers, seed=seed, trusted_proxies=["127.0.0.1"])


def token(sub: str, scope: str = "notes:read notes:write") -> dict[str, str]:
    return {"Authorization": f"Bearer {ISSUER.mint(sub=sub, scope=scope, aud=DEMO_AUDIENCE)}"}


async def test_openapi_document_is_published_under_the_mount() -> None:
    """Mounted at /demo (as `bastion serve` does), the OpenAPI document is /demo/openapi.json."""
    parent = Starlette(routes=[Mount("/demo", app=app(seed=True))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=parent), base_url="http://s") as client:
        document = (await client.get("/demo/openapi.json")).json()
        notes = await client.get("/demo/notes", headers=token("alice"))

    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT (RFC 9068)",
    }
    assert document["paths"]["/integrations/stats"]["get"]["security"] == [{"apiKey": []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    assert notes.status_code == 200
    assert len(notes.json()) == 2


async def test_no_demo_data_without_seed() -> None:
    """Outside development mode nothing is seeded: no notes, and no demo admin."""
    demo = app(seed=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=demo), base_url="http://s") as client:
        notes = await client.get("/notes", headers=token("alice"))
        admin = await client.get("/admin/notes", headers=token("carol", "notes:admin"))
        me = await client.get("/me", headers=token("carol"))

    assert (notes.status_code, notes.json()) == (200, [])
    assert admin.status_code == 403
    assert me.json() == {
        "kind": "user",
        "subject": "carol",
        "tenant": "default",
        "roles": ["member"],
        "scopes": ["notes:read", "notes:write"],
    }


async def test_roles_and_tenant_claims_count() -> None:
    """A token's roles and tenant claims are honoured (RFC 9068 §2.2.3.1 roles)."""
    demo = app(seed=False)
    claims = {"roles": ["admin"], "tenant": "initech"}
    headers = {"Authorization": f"Bearer {ISSUER.mint(sub='erin', scope='notes:read', aud=DEMO_AUDIENCE, **claims)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=demo), base_url="http://s") as client:
        me = await client.get("/me", headers=headers)

    assert (me.json()["tenant"], me.json()["roles"]) == ("initech", ["admin", "member"])


def test_seeded_people() -> None:
    """Development mode knows alice and bob (members) and carol (admin) in one tenant, dave in another."""
    assert {name: (u.tenant, sorted(u.roles)) for name, u in DEMO_USERS.items()} == {
        "alice": ("acme", []),
        "bob": ("acme", []),
        "carol": ("acme", ["admin"]),
        "dave": ("globex", []),
    }


async def test_unknown_path_is_404_and_has_security_headers() -> None:
    """Every response carries the security headers and a request id."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app(seed=False)), base_url="http://s") as client:
        response = await client.get("/nope", headers={"X-Request-ID": "r-1"})

    assert response.status_code == 404
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-request-id"] == "r-1"
