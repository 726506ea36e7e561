"""Discovery lists the real values; CORS only for public clients' web origins on API endpoints (issue 3)."""

from __future__ import annotations

import pytest

from tests.server._people import *  # noqa: F403 - fixtures and the flow driver

pytestmark = pytest.mark.anyio

SPA_ORIGIN = "https://spa.example"


async def test_openid_configuration_lists_supported_values(http):
    """The OpenID configuration names the endpoints and exactly what is implemented."""
    meta = (await http.get("/.well-known/openid-configuration")).json()

    assert meta["authorization_endpoint"] == "http://127.0.0.1:8000/authorize"
    assert meta["userinfo_endpoint"] == "http://127.0.0.1:8000/userinfo"
    assert meta["end_session_endpoint"] == "http://127.0.0.1:8000/logout"
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    # RS256, then the per-client algs with an active key (development: ES256, the access-token alg).
    assert meta["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert meta["subject_types_supported"] == ["public"]
    assert {"openid", "profile", "email", "offline_access"} <= set(meta["scopes_supported"])
    assert {"sub", "email", "nonce", "amr", "acr", "sid"} <= set(meta["claims_supported"])
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(meta["grant_types_supported"])


async def test_oauth_metadata_lists_authorization_endpoint(http):
    """RFC 8414 metadata has the authorization endpoint, code only, S256 only and RFC 9207 iss."""
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()

    assert meta["authorization_endpoint"] == "http://127.0.0.1:8000/authorize"
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True


@pytest.mark.parametrize(
    "path",
    ["/token", "/userinfo", "/revoke", "/jwks", "/.well-known/openid-configuration"],
)
async def test_preflight_allowed_for_public_client_origin(http, spa, path):
    """A preflight from a public client's redirect-URI origin is allowed on the API endpoints."""
    response = await http.options(path, headers={"origin": SPA_ORIGIN, "access-control-request-method": "POST"})

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"]


async def test_cors_refused_for_other_origin(http, spa):
    """An origin that is no public client's gets no CORS headers."""
    preflight = await http.options(
        "/token", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
    )
    simple = await http.get("/jwks", headers={"origin": "https://evil.example"})

    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_on_actual_response(http, spa):
    """An actual request from the SPA origin gets Access-Control-Allow-Origin."""
    response = await http.get("/jwks", headers={"origin": SPA_ORIGIN})

    assert response.headers["access-control-allow-origin"] == SPA_ORIGIN


@pytest.mark.parametrize("path", ["/authorize", "/login", "/consent"])
async def test_no_cors_on_authorization_endpoint_or_pages(http, spa, path):
    """Never CORS on the authorization endpoint or the pages."""
    response = await http.get(path, headers={"origin": SPA_ORIGIN})
    preflight = await http.options(path, headers={"origin": SPA_ORIGIN, "access-control-request-method": "GET"})

    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers
