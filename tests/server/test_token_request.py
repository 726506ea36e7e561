"""The token endpoint's request rules (RFC 6749 §3.2, §4.4, §5.2; RFC 8707), in-process, both databases.

Every negative case differs from a request that succeeds in exactly one respect, and asserts the
exact status and RFC 6749 §5.2 body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jwt
import pytest

from bastion.store.models import clients

pytestmark = pytest.mark.anyio

CC = "client_credentials"
FORM = "application/x-www-form-urlencoded"
PASSWORD_REFUSAL = (
    "the resource owner password credentials grant is not supported (RFC 9700 §2.4); "
    "use authorization_code with PKCE for users, or client_credentials for machines"
)


def _error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


async def _post(http: Any, client: dict[str, Any], body: bytes, content_type: str | None = FORM) -> Any:
    headers = {} if content_type is None else {"content-type": content_type}
    return await http.post("/token", content=body, headers=headers, auth=(client["client_id"], client["client_secret"]))


async def test_form_body_with_charset_is_accepted(http, register):
    """A form body whose content type carries a charset parameter is still a form body."""
    client = await register()
    response = await _post(http, client, b"grant_type=client_credentials", FORM + "; charset=UTF-8")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b'{"grant_type": "client_credentials"}', "application/json", id="json"),
        pytest.param(
            b'--b\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            id="multipart",
        ),
        pytest.param(b"grant_type=client_credentials", None, id="no-content-type"),
        pytest.param(b"grant_type=client_credentials", "text/plain", id="text-plain"),
        pytest.param(b"grant_type=client_credentials", "application/x-www-form-urlencodedx", id="lookalike-type"),
    ],
)
async def test_only_form_bodies_are_accepted(http, register, body, content_type):
    """Any body that is not application/x-www-form-urlencoded is 400 invalid_request (RFC 6749 §3.2)."""
    client = await register()
    response = await _post(http, client, body, content_type)

    assert response.status_code == 400
    assert response.json() == _error("invalid_request", f"the request body must be {FORM}")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "description"),
    [
        pytest.param(
            b"grant_type=client_credentials&grant_type=client_credentials",
            "parameter grant_type is repeated",
            id="grant_type",
        ),
        pytest.param(
            b"grant_type=client_credentials&scope=read&scope=write", "parameter scope is repeated", id="scope"
        ),
        pytest.param(
            b"grant_type=client_credentials&scope=read&scope=", "parameter scope is repeated", id="scope-second-empty"
        ),
        pytest.param(b"grant_type=client_credentials&foo=1&foo=2", "parameter foo is repeated", id="unknown-param"),
        pytest.param(
            b"grant_type=client_credentials&grant_type=password",
            "parameter grant_type is repeated",
            id="grant_type-differing",
        ),
    ],
)
async def test_repeated_parameter_is_invalid_request(http, register, body, description):
    """A parameter sent twice is 400 invalid_request naming it (RFC 6749 §3.1: MUST NOT be included more than once)."""
    client = await register()
    response = await _post(http, client, body)

    assert response.status_code == 400
    assert response.json() == _error("invalid_request", description)


@pytest.mark.parametrize(
    ("body", "description"),
    [
        pytest.param(b"\xff\xfe=1", "the request body is not valid form encoding", id="not-utf8"),
        pytest.param(b"grant_type", "the request body is not valid form encoding", id="no-equals"),
        pytest.param(b"grant_type=" + b"x" * 70_000, "request body larger than 65536 bytes", id="oversized"),
    ],
)
async def test_malformed_form_is_invalid_request(http, register, body, description):
    """A body that is not valid UTF-8 form encoding, or is oversized, is 400 invalid_request."""
    client = await register()
    response = await _post(http, client, body)

    assert response.status_code == 400
    assert response.json() == _error("invalid_request", description)


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        pytest.param(b"scope=read", 400, _error("invalid_request", "parameter grant_type is required"), id="missing"),
        pytest.param(b"grant_type=", 400, _error("invalid_request", "parameter grant_type is required"), id="empty"),
        pytest.param(
            b"grant_type=password&username=u&password=p",
            400,
            _error("unsupported_grant_type", PASSWORD_REFUSAL),
            id="password",
        ),
        pytest.param(
            b"grant_type=implicit",
            400,
            _error("unsupported_grant_type", "grant_type implicit is not supported"),
            id="implicit",
        ),
        pytest.param(
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
            400,
            _error("unsupported_grant_type", "grant_type urn:ietf:params:oauth:grant-type:jwt-bearer is not supported"),
            id="jwt-bearer",
        ),
        pytest.param(
            b"grant_type=Client_Credentials",
            400,
            _error("unsupported_grant_type", "grant_type Client_Credentials is not supported"),
            id="wrong-case",
        ),
    ],
)
async def test_grant_type_selection(http, register, body, status, expected):
    """grant_type is required, and only client_credentials is served; password names the grants to use instead."""
    client = await register()
    response = await _post(http, client, body)

    assert response.status_code == status
    assert response.json() == expected


async def test_password_grant_refused_even_without_client_authentication(http):
    """The password grant is refused before any client is looked up, so the answer reveals nothing."""
    response = await http.post("/token", data={"grant_type": "password", "username": "u", "password": "p"})

    assert response.status_code == 400
    assert response.json() == _error("unsupported_grant_type", PASSWORD_REFUSAL)


async def test_grant_not_allowed_for_client_is_unauthorized_client(http, register):
    """A confidential client registered without client_credentials gets 400 unauthorized_client."""
    client = await register(grants=("authorization_code",), redirect_uris=("https://rp.example/cb",))
    response = await http.post("/token", data={"grant_type": CC}, auth=(client["client_id"], client["client_secret"]))

    assert response.status_code == 400
    assert response.json() == _error("unauthorized_client", "this client may not use the client_credentials grant")


async def test_public_client_is_unauthorized_for_client_credentials(http, register):
    """A public client (auth method none) asking for client_credentials is 400 unauthorized_client (RFC 6749 §4.4)."""
    client = await register(auth_method="none", grants=("authorization_code",), redirect_uris=("https://rp.example/cb",))
    response = await http.post("/token", data={"grant_type": CC, "client_id": client["client_id"]})

    assert response.status_code == 400
    assert response.json() == _error("unauthorized_client", "this client may not use the client_credentials grant")


async def test_public_client_row_with_client_credentials_is_still_refused(http, register, ctx):
    """Even a stored public client that lists client_credentials (edited data) is refused by the grant itself."""
    client = await register(auth_method="none", grants=("authorization_code",), redirect_uris=("https://rp.example/cb",))
    async with ctx.database.engine.begin() as conn:
        await conn.execute(
            clients.update().where(clients.c.client_id == client["client_id"]).values(grant_types=CC)
        )
    response = await http.post("/token", data={"grant_type": CC, "client_id": client["client_id"]})

    assert response.status_code == 400
    assert response.json() == _error("unauthorized_client", "public clients may not use the client_credentials grant")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param("admin", _error("invalid_scope", "scope not allowed for this client: admin"), id="not-allowed"),
        pytest.param(
            "read admin",
            _error("invalid_scope", "scope not allowed for this client: admin"),
            id="one-of-two-not-allowed",
        ),
        pytest.param(
            "read delete admin",
            _error("invalid_scope", "scope not allowed for this client: delete admin"),
            id="two-not-allowed",
        ),
        pytest.param("READ", _error("invalid_scope", "scope not allowed for this client: READ"), id="case-sensitive"),
        pytest.param(
            "read  write",
            _error("invalid_request", "scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)"),
            id="double-space",
        ),
        pytest.param(
            " read",
            _error("invalid_request", "scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)"),
            id="leading-space",
        ),
        pytest.param(
            'read"',
            _error("invalid_request", "scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)"),
            id="quote-char",
        ),
        pytest.param(
            "read\\",
            _error("invalid_request", "scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)"),
            id="backslash",
        ),
        pytest.param(
            "réad",
            _error("invalid_request", "scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)"),
            id="non-ascii",
        ),
    ],
)
async def test_scope_rules(http, register, scope, expected):
    """Every requested scope must be allowed (else invalid_scope) and well-formed (else invalid_request)."""
    client = await register(scope=("read", "write"))
    response = await http.post(
        "/token", data={"grant_type": CC, "scope": scope}, auth=(client["client_id"], client["client_secret"])
    )

    assert response.status_code == 400
    assert response.json() == expected


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        pytest.param(None, "read write", id="none-requested-gets-default-set"),
        pytest.param("write", "write", id="subset"),
        pytest.param("write read", "write read", id="order-kept"),
        pytest.param("read read", "read", id="duplicates-collapsed"),
    ],
)
async def test_granted_scope(http, register, requested, granted):
    """The granted scope is what was requested (deduplicated), or the client's whole set when none was."""
    client = await register(scope=("read", "write"))
    data = {"grant_type": CC} if requested is None else {"grant_type": CC, "scope": requested}
    response = await http.post("/token", data=data, auth=(client["client_id"], client["client_secret"]))

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == granted


API = "https://api.example.test/orders"
OTHER = "https://api.example.test/billing"


@pytest.mark.parametrize(
    ("resources", "description"),
    [
        pytest.param(["not-a-uri"], "resource must be an absolute URI without a fragment (RFC 8707 §2)", id="relative"),
        pytest.param(["/orders"], "resource must be an absolute URI without a fragment (RFC 8707 §2)", id="path-only"),
        pytest.param(
            ["urn:example:api"], "resource must be an absolute URI without a fragment (RFC 8707 §2)", id="no-authority"
        ),
        pytest.param(
            [API + "#frag"], "resource must be an absolute URI without a fragment (RFC 8707 §2)", id="fragment"
        ),
        pytest.param(
            [API + "#"], "resource must be an absolute URI without a fragment (RFC 8707 §2)", id="empty-fragment"
        ),
        pytest.param(["https://evil.example.test/orders"], "resource not allowed for this client", id="not-allowed"),
        pytest.param([API + "/"], "resource not allowed for this client", id="trailing-slash-differs"),
        pytest.param([API, OTHER], "request a single resource per token", id="several"),
        pytest.param([API, API], "request a single resource per token", id="same-twice"),
    ],
)
async def test_resource_rules(http, register, resources, description):
    """A resource that is malformed, not allowed, or one of several is 400 invalid_target (RFC 8707 §2)."""
    client = await register(audiences=(API, OTHER))
    body = urlencode([("grant_type", CC), *(("resource", r) for r in resources)]).encode()
    response = await _post(http, client, body)

    assert response.status_code == 400
    assert response.json() == _error("invalid_target", description)


async def test_resource_outside_default_audience_refused_for_client_without_audiences(http, register, settings):
    """A client with no registered audiences may ask only for the default audience."""
    client = await register()
    auth = (client["client_id"], client["client_secret"])
    refused = await http.post("/token", data={"grant_type": CC, "resource": API}, auth=auth)
    allowed = await http.post("/token", data={"grant_type": CC, "resource": settings.audience}, auth=auth)

    assert refused.status_code == 400
    assert refused.json() == _error("invalid_target", "resource not allowed for this client")
    assert allowed.status_code == 200, allowed.text


async def test_unknown_parameters_are_ignored(http, register):
    """Unrecognised parameters are ignored (RFC 6749 §3.2), as long as none repeats."""
    client = await register()
    response = await http.post(
        "/token", data={"grant_type": CC, "foo": "bar"}, auth=(client["client_id"], client["client_secret"])
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/token", id="token"),
        pytest.param("/introspect", id="introspect"),
        pytest.param("/revoke", id="revoke"),
    ],
)
async def test_get_on_form_endpoints_is_not_allowed(http, path):
    """The form endpoints answer GET with 405 (parameters never travel in a URL)."""
    response = await http.get(path, params={"grant_type": CC})

    assert response.status_code == 405


async def test_empty_resource_is_treated_as_omitted(http, register, settings):
    """RFC 6749 §3.1: a parameter sent without a value is omitted, so `resource=` gets the default audience."""
    client = await register()
    response = await _post(http, client, b"grant_type=client_credentials&resource=")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("fields", "expires_in", "audience"),
    [
        pytest.param({}, 600, None, id="server-defaults"),
        pytest.param({"token_lifetime": 5}, 300, None, id="client-lifetime"),
        pytest.param({"audiences": (API, OTHER)}, 600, API, id="first-registered-audience"),
    ],
)
async def test_lifetime_and_default_audience(http, register, settings, fields, expires_in, audience):
    """Without a resource, aud is the client's first audience or the server's default; the lifetime is per client."""
    client = await register(**fields)
    response = await _post(http, client, b"grant_type=client_credentials")
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})

    assert body["expires_in"] == expires_in
    assert claims["exp"] - claims["iat"] == expires_in
    assert claims["aud"] == (audience or settings.audience)
