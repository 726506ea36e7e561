"""Why the guard refused a token is logged at DEBUG with the request id (issue 14, item 5); the
answer stays the same for every reason, and neither the token nor a secret reaches the log."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bastion.guard import RBAC, Authenticator, IssuerConfig, RequestGuard, RequestIdMiddleware
from tests.guard._apps import fastapi_app, starlette_app
from tests.guard._issuer import AUDIENCE, TestIssuer

pytestmark = pytest.mark.anyio

INVALID_BODY = {
    "error": "invalid_token",
    "error_description": "The access token is invalid, expired or revoked.",
}


@pytest.fixture(params=["asgi", "fastapi"])
async def guarded(
    request: pytest.FixtureRequest, live_issuer: TestIssuer
) -> AsyncIterator[tuple[httpx.AsyncClient, RequestGuard]]:
    authenticator = Authenticator([IssuerConfig(f"{live_issuer.issuer}/.well-known/openid-configuration", AUDIENCE)])
    guard = RequestGuard(authenticator, rbac=RBAC.from_mapping({"admin": ["notes:admin"]}), realm="test")
    app = starlette_app(guard) if request.param == "asgi" else fastapi_app(guard)
    app.add_middleware(RequestIdMiddleware)
    await authenticator.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client, guard
    await authenticator.aclose()


def _resigned(issuer: TestIssuer) -> str:
    head, body, signature = issuer.mint().split(".")
    return f"{head}.{body}.{signature[:-4]}AAAA"


def _revoked(issuer: TestIssuer, guard: RequestGuard) -> str:
    token = issuer.mint(jti="revoked-jti")
    guard.authenticator.denylist.add("revoked-jti", time.time() + 300)
    return token


TOKENS: list[tuple[str, str, Callable[[TestIssuer, RequestGuard], str]]] = [
    ("expired", "expired", lambda i, g: i.mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
    ("audience", "audience", lambda i, g: i.mint(aud="https://another.api")),
    ("signature", "signature", lambda i, g: _resigned(i)),
    ("issuer", "issuer", lambda i, g: i.mint(iss="https://evil.example")),
    ("unknown-key", "unknown_key", lambda i, g: i.mint(header={"kid": "nobody-s-key"})),
    ("revoked", "revoked", _revoked),
    ("malformed", "malformed", lambda i, g: "not-a-jwt"),
]


@pytest.mark.parametrize(("reason", "make"), [pytest.param(r, m, id=i) for i, r, m in TOKENS])
async def test_refusal_reason_is_logged_with_the_request_id(
    guarded: tuple[httpx.AsyncClient, RequestGuard],
    live_issuer: TestIssuer,
    caplog: pytest.LogCaptureFixture,
    reason: str,
    make: Callable[[TestIssuer, RequestGuard], str],
) -> None:
    """Each bad token gets the same 401; the debug log says why, under the response's request id."""
    client, guard = guarded
    token = make(live_issuer, guard)
    with caplog.at_level(logging.DEBUG, logger="bastion.guard"):
        response = await client.get("/notes", headers={"Authorization": f"Bearer {token}"})

    assert (response.status_code, response.json()) == (401, INVALID_BODY)
    request_id = response.headers["x-request-id"]
    messages = [r.getMessage() for r in caplog.records if r.name == "bastion.guard"]
    refusals = [m for m in messages if m.startswith("guard refused")]
    assert len(refusals) == 1
    assert refusals[0].startswith(f"guard refused GET /notes request_id={request_id} reason={reason}: ")
    assert token not in caplog.text
    assert token.rsplit(".", 1)[-1] not in caplog.text  # not even the signature


async def test_refusal_is_not_logged_above_debug(
    guarded: tuple[httpx.AsyncClient, RequestGuard], live_issuer: TestIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """At INFO the guard writes nothing about a refused token."""
    client, _ = guarded
    with caplog.at_level(logging.INFO, logger="bastion.guard"):
        response = await client.get("/notes", headers={"Authorization": f"Bearer {live_issuer.mint(aud='x')}"})

    assert response.status_code == 401
    assert [r for r in caplog.records if r.name == "bastion.guard"] == []
