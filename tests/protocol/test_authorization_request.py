"""Authorization request rules (RFC 6749 §4.1, RFC 8252 §7.3, RFC 9207) and OIDC claim helpers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bastion.protocol.errors import InvalidRequest, OAuthError, UnsupportedResponseType
from bastion.protocol.oidc import at_hash, scope_claims
from bastion.protocol.rfc6749.authorization import (
    parse_prompt,
    pkce_required,
    redirect_uri_matches,
    select_redirect_uri,
    validate_authorization_request,
)
from bastion.protocol.rfc9207 import error_response_uri, success_response_uri


@dataclass(frozen=True)
class FakeClient:
    client_id: str = "c1"
    is_public: bool = True
    redirect_uris: tuple[str, ...] = ("https://app.example/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb")
    grant_types: frozenset[str] = frozenset({"authorization_code"})
    scopes: tuple[str, ...] = ("openid", "email")


@pytest.mark.parametrize(
    ("requested", "registered", "matches"),
    [
        pytest.param("https://app.example/cb", "https://app.example/cb", True, id="exact"),
        pytest.param("https://app.example/cb/", "https://app.example/cb", False, id="trailing-slash"),
        pytest.param("https://app.example:443/cb", "https://app.example/cb", False, id="explicit-port"),
        pytest.param("https://app.example/cb?x=1", "https://app.example/cb", False, id="query"),
        pytest.param("http://127.0.0.1:5000/cb", "http://127.0.0.1/cb", True, id="loopback-v4-port"),
        pytest.param("http://[::1]:5000/cb", "http://[::1]:8080/cb", True, id="loopback-v6-port"),
        pytest.param("http://127.0.0.1:5000/other", "http://127.0.0.1/cb", False, id="loopback-path"),
        pytest.param("http://127.0.0.2:5000/cb", "http://127.0.0.1/cb", False, id="loopback-other-ip"),
        pytest.param("http://localhost:5000/cb", "http://localhost/cb", False, id="localhost-name"),
        pytest.param("https://127.0.0.1:5000/cb", "https://127.0.0.1/cb", False, id="https-loopback"),
        pytest.param("https://app.example:5000/cb", "https://app.example/cb", False, id="non-loopback-port"),
    ],
)
def test_redirect_uri_matching(requested, registered, matches):
    """Exact match, except loopback IP literals over http may vary the port (RFC 8252 §7.3)."""
    assert redirect_uri_matches(requested, registered) is matches


def test_fragment_in_redirect_uri_is_refused():
    """RFC 6749 §3.1.2: the redirect URI must not include a fragment."""
    with pytest.raises(InvalidRequest, match="fragment"):
        select_redirect_uri(FakeClient(), "https://app.example/cb#x")


def test_hybrid_response_type_is_unsupported():
    """`code id_token` is refused as unsupported_response_type."""
    params = {"response_type": ["code id_token"], "client_id": ["c1"]}
    with pytest.raises(UnsupportedResponseType):
        validate_authorization_request(params, FakeClient(), "https://app.example/cb")


def test_repeated_parameter_is_invalid_request():
    """RFC 6749 §3.1: parameters must not be repeated."""
    params = {"response_type": ["code"], "scope": ["openid", "email"]}
    with pytest.raises(InvalidRequest, match="scope is repeated"):
        validate_authorization_request(params, FakeClient(), "https://app.example/cb")


@pytest.mark.parametrize(
    ("name", "error", "description"),
    [
        pytest.param("request", "request_not_supported", "the request parameter is not supported", id="request"),
        pytest.param(
            "request_uri", "request_uri_not_supported", "the request_uri parameter is not supported", id="request_uri"
        ),
    ],
)
def test_request_objects_are_not_supported(name, error, description):
    """OpenID Connect Core §3.1.2.6: `request` answers request_not_supported, `request_uri`
    request_uri_not_supported (RFC 9101 §10.4), each with its own error code."""
    params = {"response_type": ["code"], name: ["eyJhbGciOiJub25lIn0.e30."]}

    with pytest.raises(OAuthError) as raised:
        validate_authorization_request(params, FakeClient(), "https://app.example/cb")

    assert (raised.value.error, raised.value.description, raised.value.status_code) == (error, description, 400)


@pytest.mark.parametrize(
    ("public", "relaxed", "nonce", "scope", "required"),
    [
        pytest.param(True, True, "n", ("openid",), True, id="public-always"),
        pytest.param(False, False, "n", ("openid",), True, id="confidential-default"),
        pytest.param(False, True, "n", ("openid",), False, id="confidential-oidc-nonce-relaxed"),
        pytest.param(False, True, None, ("openid",), True, id="relaxed-without-nonce"),
        pytest.param(False, True, "n", ("email",), True, id="relaxed-without-openid"),
    ],
)
def test_pkce_policy(public, relaxed, nonce, scope, required):
    """RFC 9700 §2.1.1: PKCE may be relaxed only for a confidential OIDC client that sends a nonce."""
    client = FakeClient(is_public=public)
    assert pkce_required(client, nonce=nonce, scope=scope, relaxed=relaxed) is required


def test_responses_carry_iss_and_keep_redirect_query():
    """RFC 9207: iss on success and error; the redirect URI's own query is kept."""
    ok = success_response_uri("https://app.example/cb?tenant=1", code="abc", state="s", issuer="https://as.example")
    err = error_response_uri(
        "https://app.example/cb", InvalidRequest("bad thing"), state=None, issuer="https://as.example"
    )

    assert ok == "https://app.example/cb?tenant=1&code=abc&state=s&iss=https%3A%2F%2Fas.example"
    assert (
        err == "https://app.example/cb?error=invalid_request&error_description=bad+thing&iss=https%3A%2F%2Fas.example"
    )


def test_prompt_values():
    """prompt is a space-separated set; none stands alone."""
    assert parse_prompt("login consent") == frozenset({"login", "consent"})
    with pytest.raises(InvalidRequest):
        parse_prompt("none consent")


def test_at_hash_matches_openid_connect_example():
    """at_hash of the OpenID Connect Core A.3 example access token (RS256 -> SHA-256 left half)."""
    assert at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"


def test_scope_claims_release_only_granted_scopes():
    """The email scope releases email claims only; profile claims stay out."""
    claims = {"email": "a@example.com", "email_verified": True, "name": "A", "preferred_username": "a"}
    assert scope_claims(claims, ["openid", "email"]) == {"email": "a@example.com", "email_verified": True}
