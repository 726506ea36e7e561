"""Token introspection (RFC 7662), in-process, both databases.

Only authenticated clients registered with `--introspect` may ask, within their audiences
(RFC 7662 §4); anything they may not learn about is `{"active": false}` with no reason.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from bastion.server import admin
from bastion.store.models import clients
from tests.conftest import DEFAULT_AUDIENCE
from tests.server._jose import new_client_key

pytestmark = pytest.mark.anyio

CC = {"grant_type": "client_credentials"}
INACTIVE = {"active": False}
FORM = "application/x-www-form-urlencoded"
ORDERS = "https://api.example.test/orders"
BILLING = "https://api.example.test/billing"


async def _token(http: Any, client: dict[str, Any], **data: str) -> str:
    response = await http.post("/token", data={**CC, **data}, auth=(client["client_id"], client["client_secret"]))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _introspect(http: Any, caller: dict[str, Any], token: str, **extra: str) -> Any:
    return await http.post(
        "/introspect", data={"token": token, **extra}, auth=(caller["client_id"], caller["client_secret"])
    )


async def _server_signed(ctx: Any, claims: dict[str, Any], **header: Any) -> str:
    """A token signed with the server's own active key (what only the server could mint)."""
    key = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"typ": "at+jwt", "kid": key.kid, **header})


def _claims(ctx: Any, client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ctx.issuer,
        "sub": client_id,
        "aud": ctx.settings.audience,
        "iat": now,
        "exp": now + 300,
        "jti": f"jti-{now}-{client_id}",
        "client_id": client_id,
        "scope": "read",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def test_active_token_shows_its_claims(http, register):
    """An active token is described with active, token_type and exactly its RFC 9068 claims."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register(scope=("read", "write"))
    token = await _token(http, client, scope="read")
    response = await _introspect(http, rs, token)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert response.json() == {"active": True, "token_type": "Bearer", **claims}
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "something_else"])
async def test_token_type_hint_does_not_change_the_answer(http, register, hint):
    """RFC 7662 §2.1: the hint only helps the search; the answer is the same."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    token = await _token(http, client)
    response = await _introspect(http, rs, token, token_type_hint=hint)

    assert response.status_code == 200
    assert response.json()["active"] is True


async def test_token_within_caller_audience_is_active(http, register):
    """A resource server sees tokens issued for one of its own audiences."""
    rs = await register(introspect=True, grants=(), audiences=(ORDERS,))
    client = await register(audiences=(ORDERS, BILLING))
    token = await _token(http, client, resource=ORDERS)
    response = await _introspect(http, rs, token)

    assert response.json()["active"] is True
    assert response.json()["aud"] == ORDERS


async def test_revoked_token_is_inactive(http, register):
    """After revocation the token is {"active": false}."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    token = await _token(http, client)
    revoked = await http.post("/revoke", data={"token": token}, auth=(client["client_id"], client["client_secret"]))
    response = await _introspect(http, rs, token)

    assert revoked.status_code == 200
    assert response.status_code == 200
    assert response.json() == INACTIVE


INACTIVE_CASES: list[Any] = [
    pytest.param("expired", id="expired"),
    pytest.param("other-audience", id="other-audience"),
    pytest.param("default-audience-for-scoped-rs", id="default-audience-outside-rs"),
    pytest.param("garbage", id="garbage"),
    pytest.param("empty-segments", id="empty-segments"),
    pytest.param("other-issuer", id="other-issuer"),
    pytest.param("typ-jwt", id="typ-not-at+jwt"),
    pytest.param("unknown-kid", id="unknown-kid"),
    pytest.param("foreign-key-same-kid", id="foreign-key-same-kid"),
    pytest.param("alg-none", id="alg-none"),
    pytest.param("no-jti", id="no-jti"),
]


@pytest.mark.parametrize("case", INACTIVE_CASES)
async def test_tokens_the_caller_may_not_see_are_inactive(http, register, ctx, case):
    """Expired, foreign, forged, malformed or other-audience tokens are exactly {"active": false}."""
    rs = await register(introspect=True, grants=(), audiences=(ORDERS,))
    client = await register(audiences=(ORDERS, BILLING))
    cid = client["client_id"]
    orders = _claims(ctx, cid, aud=ORDERS)
    if case == "expired":
        token = await _server_signed(
            ctx, _claims(ctx, cid, aud=ORDERS, iat=int(time.time()) - 900, exp=int(time.time()) - 120)
        )
    elif case == "other-audience":
        token = await _token(http, client, resource=BILLING)
    elif case == "default-audience-for-scoped-rs":
        token = await _server_signed(ctx, _claims(ctx, cid))
    elif case == "garbage":
        token = "not-a-token"
    elif case == "empty-segments":
        token = ".."
    elif case == "other-issuer":
        token = await _server_signed(ctx, _claims(ctx, cid, aud=ORDERS, iss="https://elsewhere.example.test"))
    elif case == "typ-jwt":
        token = await _server_signed(ctx, orders, typ="JWT")
    elif case == "unknown-kid":
        token = await _server_signed(ctx, orders, kid="no-such-kid")
    elif case == "foreign-key-same-kid":
        signing = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
        foreign = new_client_key(signing.alg, kid=signing.kid)
        token = jwt.encode(
            orders, foreign.private_key, algorithm=signing.alg, headers={"typ": "at+jwt", "kid": signing.kid}
        )
    elif case == "alg-none":
        signing = await ctx.keyring.signing_key(ctx.settings.access_token_algorithm)
        token = jwt.encode(orders, None, algorithm="none", headers={"typ": "at+jwt", "kid": signing.kid})
    else:
        token = await _server_signed(ctx, _claims(ctx, cid, aud=ORDERS, jti=None))
    response = await _introspect(http, rs, token)

    assert response.status_code == 200
    assert response.json() == INACTIVE
    assert response.headers["cache-control"] == "no-store"


async def test_server_signed_baseline_is_active(http, register, ctx):
    """The baseline of the forged cases: a server-signed token with the same claims is active."""
    rs = await register(introspect=True, grants=(), audiences=(ORDERS,))
    token = await _server_signed(ctx, _claims(ctx, "some-client", aud=ORDERS))
    response = await _introspect(http, rs, token)

    assert response.json()["active"] is True


async def test_client_without_introspect_flag_is_unauthorized_client(http, register):
    """An authenticated client not registered with --introspect gets 400 unauthorized_client."""
    client = await register()
    token = await _token(http, client)
    response = await _introspect(http, client, token)

    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "this client may not use introspection",
    }


async def test_public_client_cannot_be_registered_for_introspection(register):
    """RFC 7662 §2.1 requires authentication, so registering a public client with --introspect is refused."""
    with pytest.raises(admin.AdminError, match="--introspect needs an authenticating client"):
        await register(introspect=True, auth_method="none", grants=("authorization_code",))


async def test_public_client_row_flagged_introspect_is_still_refused(http, register, ctx):
    """Even a stored public client flagged introspect (edited data) may not introspect with client_id alone."""
    rs = await register(auth_method="none", grants=("authorization_code",), redirect_uris=("https://rp.example/cb",))
    async with ctx.database.engine.begin() as conn:
        await conn.execute(clients.update().where(clients.c.client_id == rs["client_id"]).values(introspect=True))
    client = await register()
    token = await _token(http, client)
    response = await http.post("/introspect", data={"token": token, "client_id": rs["client_id"]})

    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "this client may not use introspection",
    }


@pytest.mark.parametrize(
    ("how", "status", "expected"),
    [
        pytest.param(
            "no-auth",
            401,
            {"error": "invalid_client", "error_description": "client authentication is required"},
            id="no-auth",
        ),
        pytest.param(
            "wrong-secret",
            401,
            {"error": "invalid_client", "error_description": "client authentication failed"},
            id="wrong-secret",
        ),
        pytest.param(
            "no-token",
            400,
            {"error": "invalid_request", "error_description": "parameter token is required"},
            id="no-token",
        ),
        pytest.param(
            "json",
            400,
            {
                "error": "invalid_request",
                "error_description": "the request body must be application/x-www-form-urlencoded",
            },
            id="json-body",
        ),
        pytest.param(
            "repeated",
            400,
            {"error": "invalid_request", "error_description": "parameter token is repeated"},
            id="repeated-token",
        ),
    ],
)
async def test_malformed_introspection_requests(http, register, how, status, expected):
    """Introspection requests are authenticated, form-encoded and carry one token."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    auth = (rs["client_id"], rs["client_secret"])
    if how == "no-auth":
        response = await http.post("/introspect", data={"token": "t"})
    elif how == "wrong-secret":
        response = await http.post("/introspect", data={"token": "t"}, auth=(rs["client_id"], "wrong"))
    elif how == "no-token":
        response = await http.post("/introspect", content=b"", headers={"content-type": FORM}, auth=auth)
    elif how == "json":
        response = await http.post("/introspect", json={"token": "t"}, auth=auth)
    else:
        response = await http.post(
            "/introspect",
            content=b"token=a&token=b",
            headers={"content-type": "application/x-www-form-urlencoded"},
            auth=auth,
        )

    assert response.status_code == status
    assert response.json() == expected
