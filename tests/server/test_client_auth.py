"""Client authentication at the token endpoint (RFC 6749 §2.3, §5.2), in-process, both databases.

Every failure to authenticate is 401 `invalid_client` with one generic description, so the
answer never tells an unknown client from a disabled one or a wrong secret; the reason is audited.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bastion.protocol.rfc6749.client_auth import JWT_BEARER_ASSERTION
from bastion.server import admin
from tests.server._jose import assertion_claims, assertion_form, new_client_key, sign

pytestmark = pytest.mark.anyio

CC = {"grant_type": "client_credentials"}
FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}
MALFORMED_BASIC = {"error": "invalid_client", "error_description": "malformed Basic authorization header"}
ONE_METHOD = {
    "error": "invalid_request",
    "error_description": "use exactly one client authentication method (RFC 6749 §2.3)",
}


def _basic(raw: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


async def _token(http: Any, *, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return await http.post("/token", data={**CC, **(data or {})}, **kwargs)


async def _jwt_client(register: Any, settings: Any) -> tuple[dict[str, Any], str]:
    key = new_client_key()
    client = await register(auth_method="private_key_jwt", jwks=key.jwks)
    return client, sign(assertion_claims(client["client_id"], settings.issuer), key)


async def test_client_secret_basic_authenticates(http, register):
    """The right secret over HTTP Basic gets a token."""
    client = await register(auth_method="client_secret_basic")
    response = await _token(http, auth=(client["client_id"], client["client_secret"]))

    assert response.status_code == 200, response.text


async def test_client_secret_post_authenticates(http, register):
    """The right secret in the form body gets a token for a client_secret_post client."""
    client = await register(auth_method="client_secret_post")
    response = await _token(http, data={"client_id": client["client_id"], "client_secret": client["client_secret"]})

    assert response.status_code == 200, response.text


async def test_private_key_jwt_authenticates(http, register, settings):
    """A well-formed signed assertion gets a token for a private_key_jwt client."""
    _, assertion = await _jwt_client(register, settings)
    response = await _token(http, data=assertion_form(assertion))

    assert response.status_code == 200, response.text


async def test_none_authenticates_a_public_client(http, register):
    """A public client is identified by client_id alone; here that gets it as far as the grant check."""
    client = await register(auth_method="none", grants=("authorization_code",), redirect_uris=("https://rp.example/cb",))
    response = await _token(http, data={"client_id": client["client_id"]})

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_wrong_basic_secret_is_invalid_client_with_challenge(http, register):
    """A wrong secret over Basic is 401 invalid_client with a Basic challenge (RFC 6749 §5.2)."""
    client = await register(auth_method="client_secret_basic")
    response = await _token(http, auth=(client["client_id"], client["client_secret"][:-1] + "x"))

    assert response.status_code == 401
    assert response.json() == FAILED
    assert response.headers["www-authenticate"] == 'Basic realm="bastion", charset="UTF-8"'
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("wrong", id="wrong"),
        pytest.param("", id="empty"),
        pytest.param(None, id="truncated-by-one"),
    ],
)
async def test_wrong_post_secret_is_invalid_client_without_challenge(http, register, secret):
    """A wrong secret in the body is 401 invalid_client, without WWW-Authenticate (Basic was not tried)."""
    client = await register(auth_method="client_secret_post")
    sent = client["client_secret"][:-1] if secret is None else secret
    response = await _token(http, data={"client_id": client["client_id"], "client_secret": sent})

    assert response.status_code == 401
    assert response.json() == FAILED
    assert "www-authenticate" not in response.headers


async def test_assertion_signed_by_another_key_is_invalid_client(http, register, settings):
    """An assertion signed by a key the client never registered is 401 invalid_client."""
    client, _ = await _jwt_client(register, settings)
    stranger = new_client_key()
    assertion = sign(assertion_claims(client["client_id"], settings.issuer), stranger)
    response = await _token(http, data=assertion_form(assertion))

    assert response.status_code == 401
    assert response.json() == FAILED
    assert "www-authenticate" not in response.headers


async def test_confidential_client_cannot_authenticate_with_client_id_alone(http, register):
    """Sending only the client_id of a confidential client (method none) is 401 invalid_client."""
    client = await register(auth_method="client_secret_basic")
    response = await _token(http, data={"client_id": client["client_id"]})

    assert response.status_code == 401
    assert response.json() == FAILED


@pytest.mark.parametrize(
    ("registered", "used", "challenge"),
    [
        pytest.param("client_secret_basic", "client_secret_post", False, id="basic-client-uses-post"),
        pytest.param("client_secret_post", "client_secret_basic", True, id="post-client-uses-basic"),
        pytest.param("private_key_jwt", "client_secret_basic", True, id="jwt-client-uses-basic"),
        pytest.param("private_key_jwt", "client_secret_post", False, id="jwt-client-uses-post"),
        pytest.param("client_secret_basic", "private_key_jwt", False, id="basic-client-uses-jwt"),
        pytest.param("none", "client_secret_basic", True, id="public-client-uses-basic"),
        pytest.param("none", "client_secret_post", False, id="public-client-uses-post"),
    ],
)
async def test_method_other_than_registered_is_invalid_client(http, register, settings, registered, used, challenge):
    """A client must authenticate with the method it registered (RFC 7591 §2), even with valid credentials."""
    key = new_client_key()
    fields: dict[str, Any] = {"auth_method": registered}
    if registered == "private_key_jwt":
        fields["jwks"] = key.jwks
    if registered == "none":
        fields["grants"] = ("authorization_code",)
        fields["redirect_uris"] = ("https://rp.example/cb",)
    client = await register(**fields)
    client_id, secret = client["client_id"], client.get("client_secret", "some-secret")
    if used == "client_secret_basic":
        response = await _token(http, auth=(client_id, secret))
    elif used == "client_secret_post":
        response = await _token(http, data={"client_id": client_id, "client_secret": secret})
    else:
        response = await _token(http, data=assertion_form(sign(assertion_claims(client_id, settings.issuer), key)))

    assert response.status_code == 401
    assert response.json() == FAILED
    assert ("www-authenticate" in response.headers) is challenge


@pytest.mark.parametrize(
    "state",
    [pytest.param("unknown", id="unknown"), pytest.param("disabled", id="disabled"), pytest.param("wrong", id="wrong")],
)
@pytest.mark.parametrize("method", [pytest.param("basic", id="basic"), pytest.param("post", id="post")])
async def test_unknown_disabled_and_wrong_secret_look_the_same(http, register, ctx, state, method):
    """Unknown client, disabled client and wrong secret give the same status, body and headers."""
    auth_method = "client_secret_basic" if method == "basic" else "client_secret_post"
    client = await register(auth_method=auth_method)
    client_id, secret = client["client_id"], client["client_secret"]
    if state == "unknown":
        client_id = "no-such-client"
    elif state == "disabled":
        await admin.set_enabled(ctx.database, client_id, False)
    else:
        secret = "wrong"
    if method == "basic":
        response = await _token(http, auth=(client_id, secret))
    else:
        response = await _token(http, data={"client_id": client_id, "client_secret": secret})

    assert response.status_code == 401
    assert response.json() == FAILED
    headers = {k: v for k, v in response.headers.items() if k not in {"x-request-id", "content-length"}}
    expected = {"content-type": "application/json", "cache-control": "no-store", "pragma": "no-cache"}
    if method == "basic":
        expected["www-authenticate"] = 'Basic realm="bastion", charset="UTF-8"'
    assert headers == expected


async def test_disabled_client_with_right_secret_is_refused(http, register, ctx):
    """Disabling a client stops its right secret at once (client cache of 0 s in tests)."""
    client = await register()
    auth = (client["client_id"], client["client_secret"])
    assert (await _token(http, auth=auth)).status_code == 200
    await admin.set_enabled(ctx.database, client["client_id"], False)
    response = await _token(http, auth=auth)

    assert response.status_code == 401
    assert response.json() == FAILED


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"authorization": "Basic !!!not-base64!!!"}, id="bad-base64"),
        pytest.param({"authorization": "Basic " + base64.b64encode(b"abc").decode()[:-1]}, id="bad-padding"),
        pytest.param(_basic(b"no-colon-here"), id="no-colon"),
        pytest.param(_basic(b":secret"), id="empty-client-id"),
        pytest.param(_basic(b"\xff\xfe:secret"), id="not-utf8"),
        pytest.param({"authorization": "Basic"}, id="no-credentials"),
        pytest.param({"authorization": "Basic "}, id="blank-credentials"),
        pytest.param({"authorization": "BasicdGhpcw=="}, id="no-space"),
    ],
)
async def test_malformed_basic_header_is_invalid_client_with_challenge(http, headers):
    """Basic credentials that do not decode to `id:secret` are 401 invalid_client with a challenge."""
    response = await _token(http, headers=headers)

    assert response.status_code == 401
    assert response.json() == MALFORMED_BASIC
    assert response.headers["www-authenticate"] == 'Basic realm="bastion", charset="UTF-8"'


async def test_basic_credentials_are_form_urldecoded(http, register):
    """RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic, so an encoded secret still works."""
    client = await register()
    encoded = "".join(f"%{b:02X}" for b in client["client_secret"].encode())
    raw = f"{client['client_id']}:{encoded}".encode()
    response = await _token(http, headers=_basic(raw))

    assert response.status_code == 200, response.text


async def test_two_methods_basic_and_post_is_invalid_request(http, register):
    """Basic and a body secret together are 400 invalid_request (RFC 6749 §2.3: exactly one method)."""
    client = await register()
    response = await _token(
        http,
        data={"client_id": client["client_id"], "client_secret": client["client_secret"]},
        auth=(client["client_id"], client["client_secret"]),
    )

    assert response.status_code == 400
    assert response.json() == ONE_METHOD


async def test_two_methods_basic_and_assertion_is_invalid_request(http, register, settings):
    """Basic and a client assertion together are 400 invalid_request."""
    client, assertion = await _jwt_client(register, settings)
    response = await _token(http, data=assertion_form(assertion), auth=(client["client_id"], "x"))

    assert response.status_code == 400
    assert response.json() == ONE_METHOD


async def test_two_methods_post_and_assertion_is_invalid_request(http, register, settings):
    """A body secret and a client assertion together are 400 invalid_request."""
    client, assertion = await _jwt_client(register, settings)
    response = await _token(http, data=assertion_form(assertion, client_id=client["client_id"], client_secret="x"))

    assert response.status_code == 400
    assert response.json() == ONE_METHOD


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            {"client_secret": "s"},
            {"error": "invalid_request", "error_description": "client_secret requires client_id"},
            id="secret-without-id",
        ),
        pytest.param(
            {"client_assertion": "a.b.c"},
            {"error": "invalid_request", "error_description": f"client_assertion_type must be {JWT_BEARER_ASSERTION}"},
            id="assertion-without-type",
        ),
        pytest.param(
            {
                "client_assertion": "a.b.c",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            },
            {"error": "invalid_request", "error_description": f"client_assertion_type must be {JWT_BEARER_ASSERTION}"},
            id="saml-assertion-type",
        ),
        pytest.param(
            {"client_assertion_type": JWT_BEARER_ASSERTION},
            {"error": "invalid_request", "error_description": "parameter client_assertion is required"},
            id="type-without-assertion",
        ),
        pytest.param(
            {},
            {"error": "invalid_client", "error_description": "client authentication is required"},
            id="no-client-at-all",
        ),
    ],
)
async def test_incomplete_client_authentication(http, data, expected):
    """Half a credential is 400 invalid_request; no client identification at all is 401 invalid_client."""
    response = await _token(http, data=data)

    assert response.json() == expected
    assert response.status_code == (401 if expected["error"] == "invalid_client" else 400)


async def test_body_client_id_must_match_basic(http, register):
    """A client_id in the body that differs from the Basic one is 400 invalid_request."""
    client = await register()
    other = await register()
    response = await _token(
        http, data={"client_id": other["client_id"]}, auth=(client["client_id"], client["client_secret"])
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "client_id in the body does not match the Authorization header",
    }


async def test_body_client_id_equal_to_basic_is_accepted(http, register):
    """Repeating the Basic client_id in the body is allowed (it names the same client)."""
    client = await register()
    response = await _token(
        http, data={"client_id": client["client_id"]}, auth=(client["client_id"], client["client_secret"])
    )

    assert response.status_code == 200, response.text
