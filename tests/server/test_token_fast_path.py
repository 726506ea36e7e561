"""POST /token is served in front of the router (`TokenRouteMiddleware`); it must answer exactly
as the routed `token_endpoint` does, and its prepared signer must make what `jwt.encode` makes.

The routed endpoint is reached through the same app with a root_path, which the fast path leaves
to the router.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from bastion.keys import SigningKey
from bastion.keys.material import generate_private_key
from bastion.protocol.rfc9068 import access_token_header
from bastion.server import create_app
from bastion.server.tokens import access_token_signer

pytestmark = pytest.mark.anyio

FORM = "application/x-www-form-urlencoded"
ROOT = "/prefix"


@pytest.fixture
async def routed(settings, ctx) -> AsyncIterator[httpx.AsyncClient]:
    """The same app, called under a root_path so that POST /token goes through the router."""
    transport = httpx.ASGITransport(app=create_app(settings, ctx), client=("127.0.0.1", 50000), root_path=ROOT)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    headers = [(name, value) for name, value in response.headers.multi_items() if name != "x-request-id"]
    body = response.json()
    if "access_token" in body:
        body["access_token"] = jwt.get_unverified_header(body["access_token"])
    return response.status_code, headers, body


@pytest.mark.parametrize(
    ("body", "content_type", "auth"),
    [
        pytest.param(b"grant_type=client_credentials", FORM, "good", id="granted"),
        pytest.param(b"grant_type=client_credentials&scope=read", FORM, "good", id="granted-scope"),
        pytest.param(b"grant_type=client_credentials&scope=admin", FORM, "good", id="invalid-scope"),
        pytest.param(b"grant_type=client_credentials", "application/json", "good", id="wrong-content-type"),
        pytest.param(b"grant_type=client_credentials", None, "good", id="no-content-type"),
        pytest.param(b"grant_type=client_credentials&grant_type=x", FORM, "good", id="repeated"),
        pytest.param(b"grant_type=password", FORM, "good", id="password"),
        pytest.param(b"scope=read", FORM, "good", id="no-grant-type"),
        pytest.param(b"grant_type=client_credentials", FORM, "wrong", id="wrong-secret"),
        pytest.param(b"grant_type=client_credentials", FORM, "garbled", id="malformed-basic"),
        pytest.param(b"grant_type=client_credentials&resource=x", FORM, "good", id="bad-resource"),
        pytest.param(b"\xff=1", FORM, "good", id="not-utf-8"),
        pytest.param(b"a" * (64 * 1024 + 1), FORM, "good", id="too-large"),
    ],
)
async def test_fast_path_answers_as_the_router(http, routed, register, body, content_type, auth):
    """Status, every header but the request id (order included) and the body are the same both ways."""
    client = await register()
    headers = {} if content_type is None else {"content-type": content_type}
    if auth == "garbled":
        headers["authorization"] = "Basic !!!"
        credentials = None
    else:
        secret = client["client_secret"] if auth == "good" else "wrong"
        credentials = (client["client_id"], secret)
    fast = await http.post("/token", content=body, headers=headers, auth=credentials)
    slow = await routed.post(ROOT + "/token", content=body, headers=headers, auth=credentials)

    assert _comparable(fast) == _comparable(slow)
    assert len(fast.headers["x-request-id"]) == 16


async def test_fast_path_keeps_cors(http, register, settings):
    """A cross-origin POST /token still gets `Vary: Origin` from the CORS layer."""
    client = await register()
    response = await http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"origin": "https://elsewhere.example"},
        auth=(client["client_id"], client["client_secret"]),
    )

    assert response.status_code == 200
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256"])
def test_signer_makes_what_jwt_encode_makes(alg):
    """Header and payload segments equal PyJWT's (the whole token for deterministic RS256) and verify."""
    key = SigningKey("kid-1", alg, generate_private_key(alg))
    claims = {"iss": "https://as.test", "sub": "é", "aud": "a", "exp": 2**33, "iat": 1, "jti": "j", "amr": ["pwd"]}

    token = access_token_signer(key).sign(claims)
    expected = jwt.encode(claims, key.private_key, algorithm=alg, headers=access_token_header("kid-1"))

    if alg == "RS256":
        assert token == expected
    assert token.rsplit(".", 1)[0] == expected.rsplit(".", 1)[0]
    assert jwt.decode(token, key.private_key.public_key(), algorithms=[alg], audience="a") == claims
    assert json.loads(jwt.utils.base64url_decode(token.split(".")[0])) == {"alg": alg, "kid": "kid-1", "typ": "at+jwt"}
