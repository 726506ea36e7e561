"""RFC 6749 §2.3 client credentials: which method a request uses, and Basic decoding (sans-I/O)."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.protocol.errors import InvalidClient, InvalidRequest
from bastion.protocol.rfc6749.client_auth import (
    JWT_BEARER_ASSERTION,
    ClientCredentials,
    extract_client_credentials,
    parse_basic_authorization,
)


def basic(raw: str | bytes) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return "Basic " + base64.b64encode(data).decode()


def form(**values: str) -> dict[str, list[str]]:
    return {k: [v] for k, v in values.items()}


@pytest.mark.parametrize(
    ("authorization", "params", "expected"),
    [
        pytest.param(
            basic("id:secret"), {}, ClientCredentials("client_secret_basic", "id", secret="secret"), id="basic"
        ),
        pytest.param(
            basic("id:"), {}, ClientCredentials("client_secret_basic", "id", secret=""), id="basic-empty-secret"
        ),
        pytest.param(
            basic("i%3Ad:s%2Bx+y"),
            {},
            ClientCredentials("client_secret_basic", "i:d", secret="s+x y"),
            id="basic-form-urlencoded",
        ),
        pytest.param(
            basic("id:se:cret"),
            {},
            ClientCredentials("client_secret_basic", "id", secret="se:cret"),
            id="basic-colon-in-secret",
        ),
        pytest.param(
            None,
            form(client_id="id", client_secret="s"),
            ClientCredentials("client_secret_post", "id", secret="s"),
            id="post",
        ),
        pytest.param(
            None,
            form(client_assertion_type=JWT_BEARER_ASSERTION, client_assertion="a.b.c"),
            ClientCredentials("private_key_jwt", None, assertion="a.b.c"),
            id="assertion",
        ),
        pytest.param(None, form(client_id="id"), ClientCredentials("none", "id"), id="none"),
        pytest.param(
            "Bearer abc", form(client_id="id"), ClientCredentials("none", "id"), id="non-basic-header-ignored"
        ),
    ],
)
def test_method_is_classified(authorization, params, expected):
    """Each request shape maps to exactly one RFC 7591 token_endpoint_auth_method."""
    assert extract_client_credentials(authorization, params) == expected


def test_credentials_repr_hides_secret_and_assertion():
    """A logged ClientCredentials never shows the secret or the assertion."""
    text = repr(ClientCredentials("client_secret_post", "id", secret="s3cr3t", assertion="a.b.c"))

    assert "s3cr3t" not in text
    assert "a.b.c" not in text


@pytest.mark.parametrize(
    ("authorization", "params"),
    [
        pytest.param(basic("id:s"), form(client_secret="s"), id="basic-and-post"),
        pytest.param(basic("id:s"), form(client_assertion="a"), id="basic-and-assertion"),
        pytest.param(basic("id:s"), form(client_assertion_type=JWT_BEARER_ASSERTION), id="basic-and-assertion-type"),
        pytest.param(None, form(client_id="id", client_secret="s", client_assertion="a"), id="post-and-assertion"),
    ],
)
def test_two_methods_refused(authorization, params):
    """RFC 6749 §2.3: the client MUST NOT use more than one authentication method per request."""
    with pytest.raises(InvalidRequest) as caught:
        extract_client_credentials(authorization, params)

    assert caught.value.description == "use exactly one client authentication method (RFC 6749 §2.3)"


@pytest.mark.parametrize(
    ("params", "error", "description"),
    [
        pytest.param(form(client_secret="s"), InvalidRequest, "client_secret requires client_id", id="secret-no-id"),
        pytest.param(
            form(client_assertion="a"),
            InvalidRequest,
            f"client_assertion_type must be {JWT_BEARER_ASSERTION}",
            id="assertion-no-type",
        ),
        pytest.param(
            form(client_assertion_type=JWT_BEARER_ASSERTION),
            InvalidRequest,
            "parameter client_assertion is required",
            id="type-no-assertion",
        ),
        pytest.param({}, InvalidClient, "client authentication is required", id="nothing"),
    ],
)
def test_incomplete_credentials(params, error, description):
    """Half a credential is invalid_request; none at all is invalid_client."""
    with pytest.raises(error) as caught:
        extract_client_credentials(None, params)

    assert caught.value.description == description


def test_body_client_id_must_match_basic():
    """A client_id in the body must name the Basic client."""
    with pytest.raises(InvalidRequest, match="does not match"):
        extract_client_credentials(basic("id:s"), form(client_id="other"))


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!", id="bad-base64"),
        pytest.param("Basic " + base64.b64encode(b"nocolon").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b":secret").decode(), id="empty-id"),
        pytest.param("Basic " + base64.b64encode(b"\xff:x").decode(), id="not-utf8"),
        pytest.param("Basic", id="no-credentials"),
        pytest.param("Digest abc", id="other-scheme"),
    ],
)
def test_malformed_basic_refused_with_challenge(header):
    """Malformed Basic credentials are invalid_client flagged for a WWW-Authenticate challenge."""
    with pytest.raises(InvalidClient) as caught:
        parse_basic_authorization(header)

    assert caught.value.description == "malformed Basic authorization header"
    assert caught.value.used_basic is True


safe = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@given(safe, st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30))
def test_basic_round_trips_any_form_encoded_credentials(client_id, secret):
    """RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic-encoded, decode to themselves."""
    header = basic(f"{quote_plus(client_id)}:{quote_plus(secret)}")

    assert parse_basic_authorization(header) == (client_id, secret)
