"""The ID token signing algorithm per client (OpenID Connect Registration 1.0 §2
`id_token_signed_response_alg`, issue 3): RS256 by default, ES256 or PS256 when registered; both databases."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jwt
import pytest

from bastion.keys import lifecycle, startup
from bastion.server import admin
from tests.conftest import make_settings
from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import CALLBACK, authorize, exchange, tokens_for

pytestmark = pytest.mark.anyio


async def _client(register: Any, alg: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"id_token_alg": alg} if alg is not None else {}
    return dict(
        await register(
            name="RP",
            grants=("authorization_code", "refresh_token"),
            scope=("openid", "profile", "email", "offline_access"),
            auth_method="none",
            redirect_uris=(CALLBACK,),
            **fields,
        )
    )


def _sha256_at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


async def _verify(http: Any, id_token: str, alg: str, client: dict[str, Any]) -> dict[str, Any]:
    """Verify with the published JWKS only, as a relying party does."""
    kid = jwt.get_unverified_header(id_token)["kid"]
    jwks = (await http.get("/jwks")).json()
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(
        id_token, jwt.PyJWK(jwk).key, algorithms=[alg], audience=client["client_id"], issuer="http://127.0.0.1:8000"
    )
    return claims


@pytest.mark.parametrize(
    ("registered", "alg"),
    [pytest.param(None, "RS256", id="default-RS256"), pytest.param("ES256", "ES256", id="ES256")],
)
async def test_id_token_is_signed_with_the_clients_algorithm(browser, http, register, make_user, ctx, registered, alg):
    """The ID token header has the client's alg, typ JWT and the kid of the active key of that alg;
    it verifies from the JWKS and its at_hash is the left half of the SHA-256 of the access token."""
    client = await _client(register, registered)
    user = await make_user()

    tokens = await tokens_for(browser, http, client, user)

    header = jwt.get_unverified_header(tokens["id_token"])
    key = await ctx.keyring.signing_key(alg)
    assert key is not None
    assert header == {"alg": alg, "typ": "JWT", "kid": key.kid}
    claims = await _verify(http, tokens["id_token"], alg, client)
    assert claims["at_hash"] == _sha256_at_hash(tokens["access_token"])
    assert claims["nonce"] == tokens["_nonce"]


async def test_refreshed_id_token_keeps_the_clients_algorithm(browser, http, register, make_user):
    """An ID token issued on refresh is signed with the client's registered alg too."""
    client = await _client(register, "ES256")
    user = await make_user()
    tokens = await tokens_for(browser, http, client, user)

    response = await http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "ES256"
    claims = await _verify(http, body["id_token"], "ES256", client)
    assert claims["at_hash"] == _sha256_at_hash(body["access_token"])


async def test_alg_without_active_key_fails_the_grant_until_a_key_exists(browser, http, register, make_user, ctx):
    """A PS256 client gets a bare server_error while no PS256 key signs; after `keys rotate --alg PS256`
    its ID tokens are PS256, signed by that key."""
    client = await _client(register, "PS256")
    user = await make_user()
    outcome = await authorize(browser, client, user)

    refused = await exchange(http, client, outcome.params["code"], outcome.verifier)
    rotated = await lifecycle.rotate(ctx.database, startup.key_encryptor(ctx.settings), "PS256", 0)
    tokens = await tokens_for(browser, http, client, user)

    assert refused.status_code == 500
    assert refused.json() == {"error": "server_error"}
    assert jwt.get_unverified_header(tokens["id_token"]) == {"alg": "PS256", "typ": "JWT", "kid": rotated["kid"]}
    claims = await _verify(http, tokens["id_token"], "PS256", client)
    assert claims["at_hash"] == _sha256_at_hash(tokens["access_token"])


@pytest.mark.parametrize("alg", ["HS256", "none", "RS384", "es256"])
async def test_unknown_id_token_alg_is_refused(register, alg):
    """Only RS256, PS256 and ES256 may be registered; the message names them."""
    with pytest.raises(admin.AdminError) as refused:
        await _client(register, alg)

    assert str(refused.value) == "--id-token-alg must be one of RS256, PS256, ES256"


async def test_client_shows_its_id_token_alg(register):
    """The registered alg is part of the client's description (RS256 when not given)."""
    assert (await _client(register, None))["id_token_signed_response_alg"] == "RS256"
    assert (await _client(register, "ES256"))["id_token_signed_response_alg"] == "ES256"


async def test_discovery_lists_rs256_and_algs_with_active_keys(http, ctx):
    """id_token_signing_alg_values_supported: RS256, then PS256/ES256 only while a key of theirs signs."""
    before = (await http.get("/.well-known/openid-configuration")).json()
    await lifecycle.rotate(ctx.database, startup.key_encryptor(ctx.settings), "PS256", 0)
    after = (await http.get("/.well-known/openid-configuration")).json()

    # Development keys: RS256 for ID tokens and ES256, the default access-token algorithm.
    assert before["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert after["id_token_signing_alg_values_supported"] == ["RS256", "PS256", "ES256"]


class TestRs256Only:
    @pytest.fixture
    def settings(self, db_url, tmp_path):
        """Access tokens in RS256 too: the only key is RS256."""
        return make_settings(db_url, tmp_path, password_hashing="testing", access_token_algorithm="RS256")

    async def test_discovery_lists_only_rs256(self, http):
        """With no PS256 or ES256 key, only RS256 is listed."""
        meta = (await http.get("/.well-known/openid-configuration")).json()

        assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
