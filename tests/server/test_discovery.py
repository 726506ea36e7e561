"""Discovery (RFC 8414, OpenID Connect Discovery 1.0) and the JWK Set, in-process, both databases.

Metadata must be accurate: every value listed is checked against what the server really does.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import jwt
import pytest

from bastion.keys import lifecycle, startup
from tests.conftest import ISSUER
from tests.server._jose import assertion_claims, assertion_form, new_client_key, sign

pytestmark = pytest.mark.anyio

OAUTH = "/.well-known/oauth-authorization-server"
OPENID = "/.well-known/openid-configuration"
ASSERTION_ALGS = ["ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"]
RFC8414_KEYS = {
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "grant_types_supported",
    "response_types_supported",
    "response_modes_supported",
    "code_challenge_methods_supported",
    "authorization_response_iss_parameter_supported",
    "scopes_supported",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "introspection_endpoint",
    "introspection_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_signing_alg_values_supported",
    "revocation_endpoint",
    "revocation_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_signing_alg_values_supported",
    "access_token_signing_alg_values_supported",
    "device_authorization_endpoint",  # RFC 8628 §4 (issue 4)
}
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


async def _metadata(http: Any, path: str = OAUTH) -> dict[str, Any]:
    response = await http.get(path)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


async def test_oauth_metadata_has_exactly_the_implemented_keys(http):
    """The RFC 8414 document lists exactly the implemented features, nothing speculative."""
    assert set(await _metadata(http)) == RFC8414_KEYS


async def test_oauth_metadata_token_service_values(http):
    """The token service's entries have their exact values (issue 2)."""
    metadata = await _metadata(http)

    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == ISSUER + "/token"
    assert metadata["jwks_uri"] == ISSUER + "/jwks"
    assert metadata["introspection_endpoint"] == ISSUER + "/introspect"
    assert metadata["revocation_endpoint"] == ISSUER + "/revoke"
    assert "client_credentials" in metadata["grant_types_supported"]
    assert "password" not in metadata["grant_types_supported"]
    assert "implicit" not in metadata["grant_types_supported"]
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    # RFC 7662 §2.1: introspection requires real client authentication, so not `none`.
    assert metadata["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    assert metadata["revocation_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    for endpoint in ("token", "introspection", "revocation"):
        assert metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == ASSERTION_ALGS
    assert metadata["access_token_signing_alg_values_supported"] == ["ES256"]


@pytest.mark.parametrize("path", [pytest.param(OAUTH, id="oauth"), pytest.param(OPENID, id="openid")])
async def test_metadata_headers(http, path):
    """Metadata is public JSON that may be cached for five minutes."""
    response = await http.get(path)

    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_openid_configuration_extends_oauth_metadata(http):
    """The OpenID document repeats every RFC 8414 value and adds the OIDC Discovery §3 REQUIRED ones."""
    oauth, openid = await _metadata(http), await _metadata(http, OPENID)

    assert {k: openid[k] for k in oauth} == oauth
    for required in (
        "issuer",
        "authorization_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert required in openid
    assert "RS256" in openid["id_token_signing_alg_values_supported"]


@pytest.mark.parametrize("path", [pytest.param(OAUTH, id="oauth"), pytest.param(OPENID, id="openid")])
async def test_every_advertised_endpoint_is_served(http, path):
    """Every *_endpoint and jwks_uri in the document is a route of this server on the issuer's origin."""
    metadata = await _metadata(http, path)
    urls = {k: v for k, v in metadata.items() if k.endswith("_endpoint") or k == "jwks_uri"}

    assert urls
    for name, url in urls.items():
        assert url.startswith(ISSUER + "/"), name
        assert (await http.get(url)).status_code != 404, name


async def test_every_advertised_grant_is_known_to_the_token_endpoint(http, register):
    """No advertised grant type is answered unsupported_grant_type."""
    client = await register(grants=("client_credentials",))
    for grant in (await _metadata(http))["grant_types_supported"]:
        response = await http.post(
            "/token", data={"grant_type": grant}, auth=(client["client_id"], client["client_secret"])
        )
        assert response.json().get("error") != "unsupported_grant_type", grant


async def test_issued_token_matches_metadata(http, register):
    """A token's iss is the metadata issuer, its alg is advertised, and its kid is in the jwks_uri set."""
    metadata = await _metadata(http)
    client = await register()
    response = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client["client_id"], client["client_secret"])
    )
    token = response.json()["access_token"]
    header = jwt.get_unverified_header(token)
    jwks = (await http.get(metadata["jwks_uri"])).json()
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        token,
        key,
        algorithms=metadata["access_token_signing_alg_values_supported"],
        audience=f"{ISSUER}/api",
        issuer=metadata["issuer"],
    )

    assert claims["iss"] == metadata["issuer"]


async def test_assertion_audience_is_the_advertised_issuer(http, register):
    """A private_key_jwt client that builds aud from the metadata issuer authenticates."""
    metadata = await _metadata(http)
    key = new_client_key()
    client = await register(auth_method="private_key_jwt", jwks=key.jwks)
    assertion = sign(assertion_claims(client["client_id"], metadata["issuer"]), key)
    response = await http.post(
        metadata["token_endpoint"], data={"grant_type": "client_credentials", **assertion_form(assertion)}
    )

    assert response.status_code == 200, response.text


async def test_jwks_headers(http):
    """The JWK Set has its own media type (RFC 7517 §8.5) and a cache lifetime shorter than pre-publication."""
    response = await http.get("/jwks")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=60"


async def test_jwks_publishes_public_signing_keys_only(http):
    """Every published key is public, for signatures, with kid and alg; ES256 and RS256 are both present."""
    keys = (await http.get("/jwks")).json()["keys"]

    assert {k["alg"] for k in keys} >= {"ES256", "RS256"}
    for key in keys:
        assert not PRIVATE_JWK_MEMBERS & set(key), key["kid"]
        assert key["use"] == "sig"
        assert key["kid"]
        assert key["kty"] in {"EC", "RSA"}
    assert len({k["kid"] for k in keys}) == len(keys)


async def test_prepublished_key_is_in_jwks_before_it_signs(http, register, ctx, settings):
    """A rotated-in key is published at once but signs only after key_prepublication."""
    client = await register()
    auth = (client["client_id"], client["client_secret"])
    before = jwt.get_unverified_header(
        (await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    )["kid"]
    new = await lifecycle.rotate(ctx.database, startup.key_encryptor(settings), "ES256", 3600)
    published = {k["kid"] for k in (await http.get("/jwks")).json()["keys"]}
    after = jwt.get_unverified_header(
        (await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    )["kid"]

    assert new["activates_at"] >= int(time.time()) + 3500
    assert new["kid"] in published
    assert before in published
    assert after == before


async def test_retired_key_stays_published_while_its_tokens_live(http, register, ctx, settings):
    """After rotation and retirement the old key no longer signs but is still in the JWKS."""
    client = await register()
    auth = (client["client_id"], client["client_secret"])
    old = jwt.get_unverified_header(
        (await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    )["kid"]
    new = await lifecycle.rotate(ctx.database, startup.key_encryptor(settings), "ES256", settings.key_prepublication)
    # A rotation activates at least a second after the current key (never a tie); wait for it.
    await anyio.sleep(max(0.0, new["activates_at"] - time.time()) + 0.01)
    await lifecycle.retire(ctx.database, old)
    token = (await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    published = {k["kid"] for k in (await http.get("/jwks")).json()["keys"]}

    assert jwt.get_unverified_header(token)["kid"] == new["kid"]
    assert {old, new["kid"]} <= published
