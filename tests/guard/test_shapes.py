"""RFC 6750 behaviour of the guard, run identically against the ASGI and FastAPI shapes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from bastion.guard import RBAC, Authenticator, IssuerConfig, RequestGuard
from bastion.guard.apikeys import ApiKeyManager, MemoryApiKeyStore
from tests.guard._apps import fastapi_app, starlette_app
from tests.guard._issuer import AUDIENCE, CLIENT_ID, TestIssuer

pytestmark = pytest.mark.anyio

INVALID = (
    'Bearer realm="test", error="invalid_token", error_description="The access token is invalid, expired or revoked."'
)
INVALID_BODY = {
    "error": "invalid_token",
    "error_description": "The access token is invalid, expired or revoked.",
}
MISSING_BODY = {"error_description": "Authentication required: send 'Authorization: Bearer <token>'."}
KEYS = ApiKeyManager(MemoryApiKeyStore())
SYSTEM_KEY, _ = KEYS.create("billing-system", ["notes:read"])


def request_guard(issuer: TestIssuer) -> RequestGuard:
    authenticator = Authenticator([IssuerConfig(f"{issuer.issuer}/.well-known/openid-configuration", AUDIENCE)])
    rbac = RBAC.from_mapping({"admin": ["notes:admin"], "member": ["notes:read"]})
    return RequestGuard(authenticator, rbac=rbac, api_keys=KEYS, realm="test")


@pytest.fixture(params=["asgi", "fastapi"])
async def client(request: pytest.FixtureRequest, live_issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    guard = request_guard(live_issuer)
    app = starlette_app(guard) if request.param == "asgi" else fastapi_app(guard)
    await guard.authenticator.start()  # what the lifespan start-up does
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c
    await guard.authenticator.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_reaches_the_handler(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """A valid token with the needed scope gets through with its principal."""
    response = await client.get("/notes", headers=bearer(live_issuer.mint(sub="alice")))

    assert response.status_code == 200
    assert response.json() == {"actor": "user:alice", "kind": "user"}


async def test_client_credentials_token_is_a_client(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """RFC 9068 §2.2: a token whose sub is its client_id belongs to a client, not a user."""
    response = await client.get("/notes", headers=bearer(live_issuer.mint(sub=CLIENT_ID)))

    assert response.json() == {"actor": f"client:{CLIENT_ID}", "kind": "client"}


async def test_public_route_needs_nothing(client: httpx.AsyncClient) -> None:
    """A route marked public answers without credentials."""
    response = await client.get("/public")

    assert (response.status_code, response.json()) == (200, {"ok": True})


@pytest.mark.parametrize(
    ("url", "headers", "data"),
    [
        pytest.param("/notes", {}, None, id="nothing"),
        pytest.param("/notes?access_token=x.y.z", {}, None, id="query-token"),
        pytest.param("/notes", {"Authorization": "Digest abc"}, None, id="other-scheme"),
    ],
)
async def test_no_credentials_get_bare_challenge(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], data: Any
) -> None:
    """RFC 6750 §3.1: no (usable) credentials give 401 with a bare realm and no error code."""
    response = await client.get(url, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="test"'
    assert response.json() == MISSING_BODY


async def test_form_body_token_counts_as_none(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """RFC 6750 §2.2 form tokens are not read: the request has no credentials."""
    response = await client.post("/notes", data={"access_token": live_issuer.mint()})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="test"'


async def test_query_token_next_to_header_is_invalid_request(
    client: httpx.AsyncClient, live_issuer: TestIssuer
) -> None:
    """RFC 6750 §2: a token sent by two methods is an invalid_request."""
    token = live_issuer.mint()
    response = await client.get(f"/notes?access_token={token}", headers=bearer(token))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["www-authenticate"].startswith('Bearer realm="test", error="invalid_request"')


async def test_basic_is_refused_with_instructions(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """Authorization: Basic gets 401 and a body saying Basic is not accepted and where to get a token."""
    basic = base64.b64encode(b"alice:password").decode()
    response = await client.get("/notes", headers={"Authorization": f"Basic {basic}"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="test"'
    assert response.json() == {
        "error_description": "HTTP Basic authentication is not accepted. Send an OAuth 2.0 "
        "access token as 'Authorization: Bearer <token>'; obtain one from the token endpoint "
        f"{live_issuer.issuer}/token."
    }


def _bad_tokens(issuer: TestIssuer) -> list[Any]:
    valid = issuer.mint()
    h, p, _ = valid.split(".")
    return [
        pytest.param(f"{h}.{p}.", id="stripped-signature"),
        pytest.param(issuer.mint(header={"alg": "none"}), id="alg-none"),
        pytest.param(issuer.mint(header={"kid": "forged"}), id="forged-kid"),
        pytest.param(issuer.mint(exp=1), id="expired"),
        pytest.param(issuer.mint(aud="https://other"), id="wrong-aud"),
        pytest.param(issuer.mint(iss="http://evil"), id="wrong-iss"),
        pytest.param(issuer.mint(header={"typ": "JWT"}, aud=CLIENT_ID, nonce="n"), id="id-token"),
        pytest.param("not-a-jwt", id="opaque-garbage"),
    ]


@pytest.mark.parametrize("case", range(8), ids=[p.id for p in _bad_tokens(TestIssuer())])
async def test_invalid_tokens_get_invalid_token(client: httpx.AsyncClient, live_issuer: TestIssuer, case: int) -> None:
    """Any invalid token gives the same 401 invalid_token, with nothing that helps an attacker."""
    token = _bad_tokens(live_issuer)[case].values[0]
    response = await client.get("/notes", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID
    assert response.json() == INVALID_BODY


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer a b c", id="spaces"),
        pytest.param("Bearer ", id="empty"),
        pytest.param("Bearer abc@def", id="not-b64token"),
        pytest.param('Bearer abc"def', id="quote"),
    ],
)
async def test_malformed_authorization_header(client: httpx.AsyncClient, header: str) -> None:
    """A Bearer header whose credential is not one b64token is an invalid token."""
    response = await client.get("/notes", headers={"Authorization": header})

    assert (response.status_code, response.json()) == (401, INVALID_BODY)


async def test_insufficient_scope(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """RFC 6750 §3.1: a missing scope gives 403 insufficient_scope naming the needed scope."""
    response = await client.post("/notes", headers=bearer(live_issuer.mint(scope="notes:read")))

    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="test", error="insufficient_scope", error_description="The access token '
        'does not grant the scope this request needs.", scope="notes:write"'
    )
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token does not grant the scope this request needs.",
        "scope": "notes:write",
    }


@pytest.mark.parametrize(
    ("scope", "roles", "status"),
    [
        pytest.param("notes:admin", ["admin"], 200, id="scope-and-role"),
        pytest.param("notes:admin", ["member"], 403, id="scope-without-role"),
        pytest.param("notes:admin", None, 403, id="scope-no-roles"),
        pytest.param("notes:read", ["admin"], 403, id="role-without-scope"),
    ],
)
async def test_admin_needs_scope_and_role(
    client: httpx.AsyncClient, live_issuer: TestIssuer, scope: str, roles: list[str] | None, status: int
) -> None:
    """BFLA: an admin operation needs the admin scope AND an admin role."""
    response = await client.get("/admin/stats", headers=bearer(live_issuer.mint(scope=scope, roles=roles)))

    assert response.status_code == status


@pytest.mark.parametrize(
    ("roles", "description"),
    [
        pytest.param(
            None,
            "requires role admin; the token carries no roles claim: request the `roles` scope",
            id="no-roles-claim",
        ),
        pytest.param(["member"], "requires role admin; the caller's roles do not grant it", id="other-role"),
    ],
)
async def test_role_without_permission_body(
    client: httpx.AsyncClient, live_issuer: TestIssuer, roles: list[str] | None, description: str
) -> None:
    """A scoped caller without the entitlement gets 403 forbidden naming the role (and the `roles`
    scope when the token carries no roles claim), not a token error."""
    response = await client.get("/admin/stats", headers=bearer(live_issuer.mint(scope="notes:admin", roles=roles)))

    assert response.status_code == 403
    assert "www-authenticate" not in response.headers
    assert response.json() == {"error": "forbidden", "error_description": description}


async def test_api_key_is_not_a_user(client: httpx.AsyncClient) -> None:
    """An API key sent to a route that needs a user's token is refused."""
    response = await client.get("/notes", headers={"X-API-Key": SYSTEM_KEY})

    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "This operation needs a user's access token; API keys are not accepted.",
    }


async def test_api_key_route_accepts_key(client: httpx.AsyncClient) -> None:
    """A route that takes API keys identifies the calling system."""
    response = await client.get("/system/ping", headers={"X-API-Key": SYSTEM_KEY})

    assert response.json() == {"actor": f"apikey:{SYSTEM_KEY[4:16]}", "kind": "api_key"}


async def test_token_on_api_key_route_is_refused(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """A route that takes only API keys refuses access tokens."""
    response = await client.get("/system/ping", headers=bearer(live_issuer.mint()))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("bsk_nonsense", id="bad-format"),
        pytest.param(SYSTEM_KEY[:-1] + ("A" if SYSTEM_KEY[-1] != "A" else "B"), id="bad-checksum"),
    ],
)
async def test_invalid_api_key(client: httpx.AsyncClient, key: str) -> None:
    """A malformed or tampered API key gets 401 invalid_api_key."""
    response = await client.get("/either", headers={"X-API-Key": key})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="test"'
    assert response.json() == {
        "error": "invalid_api_key",
        "error_description": "The API key is invalid, expired or revoked.",
    }


async def test_two_credentials_are_invalid_request(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """RFC 6750 §2: one credential per request."""
    headers = bearer(live_issuer.mint()) | {"X-API-Key": SYSTEM_KEY}
    response = await client.get("/either", headers=headers)

    assert response.status_code == 400


async def test_either_route_takes_both(client: httpx.AsyncClient, live_issuer: TestIssuer) -> None:
    """A route that accepts tokens and keys takes either."""
    by_token = await client.get("/either", headers=bearer(live_issuer.mint()))
    by_key = await client.get("/either", headers={"X-API-Key": SYSTEM_KEY})

    assert (by_token.status_code, by_key.status_code) == (200, 200)


async def test_fastapi_refuses_to_start_with_unprotected_route(live_issuer: TestIssuer) -> None:
    """Deny by default: a FastAPI route without a requirement stops the start-up."""
    app = fastapi_app(request_guard(live_issuer), unprotected=True)

    with pytest.raises(Exception, match=r"routes without a declared requirement .*: GET /forgotten"):
        async with app.router.lifespan_context(app):
            pass


async def _lifespan_messages(app: Any) -> list[dict[str, Any]]:
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


async def test_asgi_refuses_to_start_with_unprotected_route(live_issuer: TestIssuer) -> None:
    """Deny by default: a Starlette route without a rule fails lifespan start-up."""

    async def handler(request: Any) -> Any:
        raise AssertionError

    app = starlette_app(request_guard(live_issuer), extra_routes=[Route("/forgotten", handler)])
    sent = await _lifespan_messages(app)

    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "routes without a declared requirement (declare one or mark them public): GET /forgotten",
        }
    ]


async def test_asgi_starts_when_every_route_is_declared(live_issuer: TestIssuer) -> None:
    """With every route covered the start-up completes (and discovers the issuer)."""
    guard = request_guard(live_issuer)
    sent = await _lifespan_messages(starlette_app(guard))

    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert guard.authenticator.token_endpoints() == [f"{live_issuer.issuer}/token"]
