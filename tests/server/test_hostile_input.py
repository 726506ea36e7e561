"""Hostile bytes in identifiers and parameters never reach the database as errors (no 500s), both databases."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import DEFAULT_AUDIENCE
from tests.server._jose import assertion_claims, assertion_form, new_client_key, sign

pytestmark = pytest.mark.anyio

FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}
CONTROL = {"error": "invalid_request", "error_description": "parameters must not contain control characters"}


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param("a\x00b", id="nul"),
        pytest.param("\x00", id="only-nul"),
        pytest.param("é" * 10, id="non-ascii"),
        pytest.param("x" * 5000, id="very-long"),
        pytest.param("a\nb", id="newline"),
    ],
)
async def test_hostile_client_id_is_just_an_unknown_client(http, client_id):
    """A client_id no client can have is invalid_client like any unknown client (or, in a form with a control
    character, invalid_request), never a server error."""
    basic = "Basic " + base64.b64encode(f"{client_id}:secret".encode()).decode()
    over_basic = await http.post("/token", data={"grant_type": "client_credentials"}, headers={"authorization": basic})
    over_post = await http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "secret"}
    )

    assert over_basic.status_code == 401, over_basic.text
    assert over_basic.json() == FAILED
    if any(ord(c) < 0x20 for c in client_id):
        # A form field with a control character is not a parameter at all (refused while parsing).
        assert (over_post.status_code, over_post.json()) == (400, CONTROL), over_post.text
    else:
        assert over_post.status_code == 401, over_post.text
        assert over_post.json() == FAILED


@pytest.mark.parametrize(
    "since",
    [
        pytest.param("9" * 30, id="30-digits"),
        pytest.param("9" * 13, id="13-digits"),
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param("\u0663", id="arabic-indic-three"),
    ],
)
async def test_impossible_since_is_invalid_request(http, register, since):
    """A `since` that is not a plausible unix time in ASCII digits is 400 invalid_request, never a database error."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    response = await http.get("/revocations", params={"since": since}, auth=(rs["client_id"], rs["client_secret"]))

    assert response.status_code == 400, response.text
    assert response.json() == {"error": "invalid_request", "error_description": "since must be unix seconds"}


async def test_largest_accepted_since_works(http, register):
    """Twelve digits (far in the future) are accepted and simply list nothing."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    response = await http.get("/revocations", params={"since": "9" * 12}, auth=(rs["client_id"], rs["client_secret"]))

    assert response.status_code == 200, response.text
    assert response.json()["revocations"] == []


@pytest.mark.parametrize(
    "jti",
    [
        pytest.param("a\x00b", id="nul"),
        pytest.param("j" * 300, id="300-chars"),
    ],
)
async def test_hostile_assertion_jti_is_invalid_client(http, register, settings, jti):
    """A signed assertion whose jti cannot be recorded for replay protection is refused, not a server error."""
    key = new_client_key()
    client = await register(auth_method="private_key_jwt", jwks=key.jwks)
    assertion = sign(assertion_claims(client["client_id"], settings.issuer, jti=jti), key)
    response = await http.post("/token", data={"grant_type": "client_credentials", **assertion_form(assertion)})

    assert response.status_code == 401, response.text
    assert response.json() == FAILED
