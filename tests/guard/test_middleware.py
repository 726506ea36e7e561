"""GuardMiddleware's hot path: a token verified before is decided exactly as a new one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.guard import RBAC, Authenticator, GuardError, RequestGuard, TrustedIssuer, require_scopes
from bastion.guard.audit import AuditLog, JsonLinesSink, read_jsonl
from bastion.guard.middleware import GuardMiddleware, RouteRule
from tests.guard._issuer import AUDIENCE, TestIssuer

pytestmark = pytest.mark.anyio

ISSUER = TestIssuer()
GET, POST = frozenset({"GET"}), frozenset({"POST"})
RULES = [
    RouteRule("/notes", require_scopes("notes:read"), GET),
    RouteRule("/notes", require_scopes("notes:write"), POST),
    RouteRule("/notes/{note_id}", require_scopes("notes:read"), GET),
    RouteRule("/admin/stats", require_scopes("notes:admin", permissions=["notes:admin"]), GET),
]
# Entry fields that differ between any two audit entries, whatever they record.
CHAIN_FIELDS = ("seq", "time", "prev", "hash")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def handler(request: Request) -> JSONResponse:
    return JSONResponse({"actor": request.state.principal.actor})


def guarded(
    *, clock: Callable[[], float] = time.time, audit: AuditLog | None = None, match_cache_size: int = 1024
) -> GuardMiddleware:
    authenticator = Authenticator(
        static_issuers=[(TrustedIssuer(ISSUER.issuer, AUDIENCE), ISSUER.public_jwks())], clock=clock
    )
    guard = RequestGuard(authenticator, rbac=RBAC.from_mapping({"admin": ["notes:admin"]}), audit=audit)
    routes = [
        Route("/notes", handler, methods=["GET", "POST"]),
        Route("/notes/{note_id}", handler, methods=["GET"]),
        Route("/admin/stats", handler, methods=["GET"]),
    ]
    return GuardMiddleware(Starlette(routes=routes), guard=guard, rules=RULES, match_cache_size=match_cache_size)


def client_of(app: GuardMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
async def audited(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    path = tmp_path / "audit.jsonl"
    async with client_of(guarded(audit=AuditLog([JsonLinesSink(path)]))) as client:
        yield client, path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def without_chain(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in CHAIN_FIELDS}


@pytest.mark.parametrize(
    ("method", "path", "claims"),
    [
        pytest.param("POST", "/notes", {"scope": "notes:read"}, id="missing-scope"),
        pytest.param("GET", "/admin/stats", {"scope": "notes:admin"}, id="missing-permission"),
    ],
)
async def test_cached_token_is_refused_and_audited_like_a_new_one(
    audited: tuple[httpx.AsyncClient, Path], method: str, path: str, claims: dict[str, Any]
) -> None:
    """A refusal for a token already verified has the same answer and audit entry as the first."""
    client, log = audited
    headers = bearer(ISSUER.mint(**claims))

    first = await client.request(method, path, headers=headers)  # verifies the signature
    second = await client.request(method, path, headers=headers)  # from the verified-token cache

    assert first.status_code == 403
    assert (second.status_code, second.headers, second.json()) == (first.status_code, first.headers, first.json())
    entries = [without_chain(e) for e in read_jsonl(log)]
    assert len(entries) == 2
    assert entries[0] == entries[1]
    assert entries[0]["object"] == f"{method} {path}"


async def test_cached_token_is_refused_once_revoked() -> None:
    """A revocation reaches a token that the hot path already knows."""
    app = guarded()
    headers = bearer(ISSUER.mint(jti="revoke-me"))
    async with client_of(app) as client:
        assert (await client.get("/notes", headers=headers)).status_code == 200
        app.guard.authenticator.denylist.add("revoke-me", time.time() + 300)

        response = await client.get("/notes", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_cached_token_is_refused_once_expired() -> None:
    """The hot path checks a cached token's exp against the clock on every request."""
    clock = Clock()
    app = guarded(clock=clock)
    headers = bearer(ISSUER.mint(exp=int(clock.now) + 60))
    async with client_of(app) as client:
        assert (await client.get("/notes", headers=headers)).status_code == 200
        clock.now += 61 + 60  # past exp and the default leeway

        response = await client.get("/notes", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_head_is_checked_by_the_get_rule() -> None:
    """HEAD takes the GET rule, cached or not: without credentials it is refused."""
    async with client_of(guarded()) as client:
        ok = await client.head("/notes", headers=bearer(ISSUER.mint()))
        refused = await client.head("/notes")

    assert (ok.status_code, refused.status_code) == (200, 401)


async def test_route_match_cache_is_bounded() -> None:
    """Paths matched through a template are remembered up to the bound; unmatched ones never."""
    app = guarded(match_cache_size=8)
    headers = bearer(ISSUER.mint(sub="alice"))
    async with client_of(app) as client:
        matched = [await client.get(f"/notes/{i}", headers=headers) for i in range(50)]
        unmatched = [await client.get(f"/nowhere/{i}", headers=headers) for i in range(50)]
        again = await client.get("/notes/49", headers=headers)

    assert {r.status_code for r in matched} == {200}
    assert {r.status_code for r in unmatched} == {404}
    assert again.json() == {"actor": "user:alice"}
    assert set(app._matched) == {("GET", f"/notes/{i}") for i in range(42, 50)}


async def test_route_match_cache_can_be_turned_off() -> None:
    """With a bound of zero every request matches the templates again, with the same result."""
    app = guarded(match_cache_size=0)
    async with client_of(app) as client:
        response = await client.get("/notes/1", headers=bearer(ISSUER.mint()))

    assert response.status_code == 200
    assert app._matched == {}



def _decided(decide: Callable[[], Any]) -> tuple[str, Any]:
    """("principal", p) or ("refused", (error type, detail)); ("undecided", None) for None."""
    try:
        principal = decide()
    except GuardError as error:
        return "refused", (type(error), error.detail)
    return ("undecided", None) if principal is None else ("principal", principal)


async def _decided_async(decide: Callable[[], Awaitable[Any]]) -> tuple[str, Any]:
    try:
        principal = await decide()
    except GuardError as error:
        return "refused", (type(error), error.detail)
    return "principal", principal


BEARER = b"authorization"


@pytest.mark.parametrize(
    ("minted_scope", "headers", "query", "fast_decides"),
    [
        pytest.param("notes:read", lambda t: [(BEARER, b"Bearer " + t)], b"", True, id="authorized"),
        pytest.param("notes:write", lambda t: [(BEARER, b"Bearer " + t)], b"", True, id="missing-scope"),
        pytest.param("notes:read", lambda t: [(b"Authorization", b"bearer  " + t)], b"", True, id="other-spelling"),
        pytest.param("notes:read", lambda t: [], b"", False, id="no-credentials"),
        pytest.param("notes:read", lambda t: [(b"x-api-key", b"k")], b"", False, id="api-key"),
        pytest.param("notes:read", lambda t: [(BEARER, b"Bearer " + t)], b"access_token=x", False, id="query-too"),
        pytest.param("notes:read", lambda t: [(BEARER, b"Basic YTpi")], b"", False, id="basic"),
    ],
)
async def test_check_cached_decides_as_check(
    minted_scope: str, headers: Callable[[bytes], list[tuple[bytes, bytes]]], query: bytes, fast_decides: bool
) -> None:
    """The fast twin `check_cached` gives `check`'s principal or refusal for a token verified before,
    and for anything else no answer (None), leaving the decision (a refusal here) to `check`."""
    guard = guarded().guard
    token = ISSUER.mint(scope=minted_scope).encode()
    requirement = require_scopes("notes:read")
    await _decided_async(lambda: guard.check(requirement, [(BEARER, b"Bearer " + token)], b""))  # verified now
    scope = {"type": "http", "method": "GET", "path": "/notes", "headers": headers(token), "query_string": query}

    fast = _decided(lambda: guard.check_cached(requirement, scope))
    slow = await _decided_async(lambda: guard.check(requirement, scope["headers"], query))

    if fast_decides:
        assert fast == slow
    else:
        assert (fast, slow[0]) == (("undecided", None), "refused")
