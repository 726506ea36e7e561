"""RequestIdMiddleware: one id per request, believed from trusted proxies only, seen by the audit.

In-process (httpx's ASGI transport, whose client address is 127.0.0.1 unless given).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from bastion.guard import RBAC, Authenticator, RequestGuard, RequestIdMiddleware, TrustedIssuer, current_request_id
from bastion.guard.audit import AuditLog, JsonLinesSink, read_jsonl
from bastion.guard.request_id import request_id_of
from tests.guard._apps import fastapi_app, starlette_app
from tests.guard._issuer import AUDIENCE, TestIssuer

pytestmark = pytest.mark.anyio

ISSUER = TestIssuer()
MADE_HERE = re.compile(r"[0-9a-f]{16}")


async def seen(request: Request) -> JSONResponse:
    """What the application sees of the id: the contextvar and the scope (where the audit reads)."""
    return JSONResponse({"current": current_request_id(), "scope": request_id_of(request.scope)})


def app_with_ids(**options: Any) -> ASGIApp:
    return RequestIdMiddleware(Starlette(routes=[Route("/", seen)]), **options)


async def get(app: ASGIApp, *, peer: str = "127.0.0.1", headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.get("/", headers=headers)


async def test_id_is_made_and_seen_everywhere_alike():
    """Without an incoming id one is made; the response, the contextvar and the scope agree."""
    response = await get(app_with_ids())

    request_id = response.headers["x-request-id"]
    assert MADE_HERE.fullmatch(request_id)
    assert response.json() == {"current": request_id, "scope": request_id}
    assert current_request_id() is None  # the id belonged to that request only


async def test_each_request_gets_its_own_id():
    """Two requests, two ids."""
    app = app_with_ids()

    assert (await get(app)).headers["x-request-id"] != (await get(app)).headers["x-request-id"]


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        pytest.param((), "127.0.0.1", id="no-trusted-proxies"),
        pytest.param(("10.0.0.1",), "127.0.0.1", id="other-address"),
        pytest.param(("10.0.0.0/8",), "192.168.1.7", id="outside-network"),
        pytest.param(("::1",), "127.0.0.1", id="other-family"),
    ],
)
async def test_incoming_id_from_untrusted_peer_is_ignored(trusted, peer):
    """A caller that is not a trusted proxy cannot choose the id of its request."""
    response = await get(app_with_ids(trusted_proxies=trusted), peer=peer, headers={"X-Request-ID": "chosen-1"})

    assert MADE_HERE.fullmatch(response.headers["x-request-id"])
    assert response.json()["scope"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        pytest.param(("127.0.0.1",), "127.0.0.1", id="address"),
        pytest.param(("10.0.0.0/8",), "10.20.30.40", id="network"),
        pytest.param(("::1",), "::1", id="ipv6"),
        pytest.param(("*",), "203.0.113.9", id="any"),
    ],
)
async def test_incoming_id_from_trusted_proxy_is_kept(trusted, peer):
    """A trusted proxy's well-formed X-Request-ID names the request."""
    response = await get(app_with_ids(trusted_proxies=trusted), peer=peer, headers={"X-Request-ID": "Proxy_id-1.2"})

    assert response.headers["x-request-id"] == "Proxy_id-1.2"
    assert response.json() == {"current": "Proxy_id-1.2", "scope": "Proxy_id-1.2"}


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("x" * 65, id="65-chars"),
        pytest.param("a b", id="space"),
        pytest.param('a"}', id="json-quote"),
        pytest.param("a=b;c", id="punctuation"),
        pytest.param("", id="empty"),
    ],
)
async def test_malformed_incoming_id_is_replaced(given):
    """Even from a trusted proxy, an id that is not 1-64 of [A-Za-z0-9._-] is replaced."""
    response = await get(app_with_ids(trusted_proxies=["127.0.0.1"]), headers={"X-Request-ID": given})

    assert MADE_HERE.fullmatch(response.headers["x-request-id"])


async def test_nested_middleware_keeps_the_outer_id_and_one_header():
    """An app with its own RequestIdMiddleware mounted in another keeps the outer id: one header."""
    inner = app_with_ids(trusted_proxies=["*"])
    outer = RequestIdMiddleware(Starlette(routes=[Mount("/", app=inner)]))
    response = await get(outer, headers={"X-Request-ID": "inner-would-take-this"})

    assert len(response.headers.get_list("x-request-id")) == 1
    request_id = response.headers["x-request-id"]
    assert MADE_HERE.fullmatch(request_id)
    assert response.json() == {"current": request_id, "scope": request_id}


def test_trusted_proxies_must_be_addresses_or_networks():
    """A trusted proxy given by name is refused at construction, not silently never matched."""
    with pytest.raises(ValueError, match=r"'proxy\.example' does not appear to be an IPv4 or IPv6 network"):
        app_with_ids(trusted_proxies=["proxy.example"])


def _guard(audit: AuditLog) -> RequestGuard:
    authenticator = Authenticator(static_issuers=[(TrustedIssuer(ISSUER.issuer, AUDIENCE), ISSUER.public_jwks())])
    return RequestGuard(authenticator, rbac=RBAC.from_mapping({"admin": ["notes:admin"]}), audit=audit)


@pytest.mark.parametrize(
    ("shape", "attempts"),
    [
        pytest.param(starlette_app, 1, id="middleware"),
        pytest.param(starlette_app, 2, id="middleware-cached-token"),
        pytest.param(fastapi_app, 1, id="fastapi"),
    ],
)
async def test_third_party_guard_audit_entries_carry_the_request_id(tmp_path: Path, shape, attempts):
    """A guard-protected API with no server around it audits each refusal under the response's id."""
    path = tmp_path / "audit.jsonl"
    app = RequestIdMiddleware(shape(_guard(AuditLog([JsonLinesSink(path)]))))
    token = ISSUER.mint(scope="notes:read")  # not notes:admin: refused, and audited
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        responses = [
            await client.get("/admin/stats", headers={"Authorization": f"Bearer {token}"}) for _ in range(attempts)
        ]

    assert [r.status_code for r in responses] == [403] * attempts
    entries = list(read_jsonl(path))
    assert [(e["action"], e["request_id"]) for e in entries] == [
        ("request.refused", r.headers["x-request-id"]) for r in responses
    ]


async def test_two_incoming_ids_are_no_id():
    """Two X-Request-ID headers, even from a trusted proxy, are replaced by an id made here: readers
    that take the first and readers that take the last would name the request differently."""
    transport = httpx.ASGITransport(app=app_with_ids(trusted_proxies=["127.0.0.1"]), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/", headers=[("X-Request-ID", "first-1"), ("X-Request-ID", "second-2")])

    assert MADE_HERE.fullmatch(response.headers["x-request-id"])
    assert response.json()["scope"] == response.headers["x-request-id"]
