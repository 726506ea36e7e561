"""POST /token is served in front of the router (`TokenRouteMiddleware`); it must answer exactly
as the same endpoint reached through the router does, and its prepared signer must make what
`jwt.encode` makes.

The routed endpoint is reached through the same app with a root_path, which the fast path leaves
to the router.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from jwt.utils import der_to_raw_signature

from bastion.events import compact_json
from bastion.keys import SigningKey
from bastion.keys.material import generate_private_key
from bastion.keys.signer import raw_ecdsa_signature
from bastion.protocol.errors import InvalidRequest
from bastion.protocol.rfc6749.params import parse_form
from bastion.protocol.rfc9068 import access_token_header
from bastion.server import create_app
from bastion.server.responses import NO_STORE, json_response, send_no_store_json
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


def test_id_token_signer_makes_what_jwt_encode_makes_and_never_the_access_token_header():
    """The ID token's signer (same key) is its own: typ JWT, not at+jwt, byte for byte PyJWT's."""
    from bastion.protocol.oidc import id_token_header
    from bastion.server.tokens import jws_signer

    key = SigningKey("kid-1", "RS256", generate_private_key("RS256"))
    claims = {"iss": "https://as.test", "sub": "s", "aud": "client", "exp": 2**33, "iat": 1, "nonce": "n"}

    access = access_token_signer(key).sign(claims)
    identity = jws_signer(key, "id_token", id_token_header).sign(claims)

    assert identity == jwt.encode(claims, key.private_key, algorithm="RS256", headers=id_token_header("kid-1"))
    assert jwt.get_unverified_header(identity)["typ"] == "JWT"
    assert jwt.get_unverified_header(access)["typ"] == "at+jwt"


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name)
def test_raw_ecdsa_signature_is_pyjwts(curve):
    """R || S is what PyJWT's der_to_raw_signature makes of the same DER signature."""
    key = ec.generate_private_key(curve)
    for message in (b"a", b"b", b"c", b"d"):
        der = key.sign(message, ec.ECDSA(hashes.SHA256()))
        assert raw_ecdsa_signature(der, (curve.key_size + 7) // 8) == der_to_raw_signature(der, curve)


def _parse_qsl_form(body: bytes) -> tuple[str, ...]:
    """The simple parse_form: parse_qsl decoding strictly (percent-encodings that are not UTF-8 are
    refused, not replaced), no control characters, then repeats (only `resource` may repeat)."""
    control = "[\x00-\x1f\x7f-\x9f]"
    try:
        text = body.decode("utf-8")
        if re.search(control, text):  # a raw control character is refused before any field is read
            return ("error", "parameters must not contain control characters", "None")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        return ("error", "the request body is not valid form encoding", str(exc))
    if any(re.search(control, name + value) for name, value in pairs):
        return ("error", "parameters must not contain control characters", "None")
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        values = params.setdefault(name, [])
        if values and name != "resource":
            return ("error", f"parameter {name} is repeated", "None")
        values.append(value)
    return ("ok", json.dumps(params))


FORM_PIECES = st.sampled_from(
    ["a", "b", "=", "&", "+", "%", "%2", "%20", "%e9", "%C3%A9", "%ZZ", "resource", "é", "\xff", "%00", "%7F",
     "%ed%a0%80", "\x01"]
)


@given(st.lists(FORM_PIECES, max_size=16).map("".join), st.booleans())
def test_parse_form_matches_parse_qsl(text, latin1):
    """Fields, errors and error details are those of parse_qsl with strict parsing, repeats judged after."""
    body = text.encode("latin-1", "replace") if latin1 else text.encode()
    try:
        got: tuple[str, ...] = ("ok", json.dumps(parse_form(body, repeatable={"resource"})))
    except InvalidRequest as exc:
        got = ("error", exc.description, str(exc.detail))

    assert got == _parse_qsl_form(body)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [True, None, 1.5, 'é\u2028"x'], "c": {"d": float("inf")}},
        {"when": datetime(2026, 1, 1)},
        "plain",
        [],
    ],
    ids=["nested", "default", "string", "list"],
)
def test_compact_json_is_json_dumps(value):
    """compact_json(default=str) writes what json.dumps(separators=(",", ":"), default=str) writes."""
    assert compact_json(default=str)(value) == json.dumps(value, separators=(",", ":"), default=str)


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "h.p.s", "token_type": "Bearer", "expires_in": 600, "scope": "read write"},
        {"device_code": "x", "interval": 5, "verification_uri": "https://é.example/device"},
    ],
    ids=["token", "non-ascii"],
)
async def test_no_store_json_is_json_response(body):
    """The token endpoint's prepared success answer sends exactly the messages json_response sends."""
    fast: list[dict[str, Any]] = []
    slow: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def to(messages: list[dict[str, Any]]) -> Any:
        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        return send

    await send_no_store_json(await to(fast), body)
    await json_response(body, headers=NO_STORE)({"type": "http", "method": "POST"}, receive, await to(slow))

    assert fast == slow
