"""`private_key_jwt` client authentication (RFC 7523 §3, RFC 7523bis, RFC 8725), in-process, both databases.

Each hostile assertion changes one thing in an assertion that is otherwise accepted (see
`test_valid_assertion_is_accepted`), so a 401 can only come from the rule under test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from bastion.server import admin, create_app, open_context
from tests.conftest import ISSUER, make_settings, prepare
from tests.server._jose import (
    ClientKey,
    assertion_claims,
    assertion_form,
    hmac_with_public_key,
    new_client_key,
    sign,
    unsigned,
)

pytestmark = pytest.mark.anyio

CC = {"grant_type": "client_credentials"}
FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}


@dataclass
class JwtClient:
    client_id: str
    key: ClientKey
    issuer: str

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/token"

    def claims(self, **changes: Any) -> dict[str, Any]:
        return assertion_claims(self.client_id, self.issuer, **changes)

    def assertion(self, **changes: Any) -> str:
        return sign(self.claims(**changes), self.key)


@pytest.fixture
async def jwt_client(register, settings) -> JwtClient:
    key = new_client_key("ES256")
    client = await register(auth_method="private_key_jwt", jwks=key.jwks)
    return JwtClient(client["client_id"], key, settings.issuer)


async def _token(http: Any, assertion: str, **extra: str) -> Any:
    return await http.post("/token", data={**CC, **assertion_form(assertion, **extra)})


async def test_valid_assertion_is_accepted(http, jwt_client):
    """The baseline every hostile case departs from: aud = issuer, iss = sub = client_id, short exp, fresh jti."""
    response = await _token(http, jwt_client.assertion())

    assert response.status_code == 200, response.text


def _now() -> int:
    return int(time.time())


Build = Callable[[JwtClient], str]

HOSTILE: list[Any] = [
    pytest.param(lambda c: c.assertion(aud=[c.issuer]), id="aud-array-of-issuer"),
    pytest.param(lambda c: c.assertion(aud=[c.issuer, "https://other.example.test"]), id="aud-array-with-issuer"),
    pytest.param(lambda c: c.assertion(aud=c.token_endpoint), id="aud-token-endpoint-without-compat-flag"),
    pytest.param(lambda c: c.assertion(aud="https://evil.example.test"), id="aud-wrong"),
    pytest.param(lambda c: c.assertion(aud=c.issuer + "/"), id="aud-issuer-with-trailing-slash"),
    pytest.param(lambda c: c.assertion(aud=None), id="aud-missing"),
    pytest.param(lambda c: c.assertion(exp=None), id="exp-missing"),
    pytest.param(lambda c: c.assertion(exp=str(_now() + 60)), id="exp-a-string"),
    pytest.param(lambda c: c.assertion(exp=_now() + 900), id="lifetime-over-max"),
    pytest.param(lambda c: c.assertion(iat=None, exp=_now() + 900), id="lifetime-over-max-without-iat"),
    pytest.param(lambda c: c.assertion(iat=_now() - 400, exp=_now() - 120), id="expired"),
    pytest.param(lambda c: c.assertion(nbf=_now() + 300), id="not-yet-valid"),
    pytest.param(lambda c: c.assertion(jti=None), id="jti-missing"),
    pytest.param(lambda c: c.assertion(jti=""), id="jti-empty"),
    pytest.param(lambda c: c.assertion(jti=12345), id="jti-not-a-string"),
    pytest.param(lambda c: c.assertion(iss="someone-else"), id="iss-not-client"),
    pytest.param(lambda c: c.assertion(sub="someone-else"), id="sub-not-client"),
    pytest.param(lambda c: c.assertion(iss=None), id="iss-missing"),
    pytest.param(lambda c: sign(c.claims(), new_client_key("ES256", kid=c.key.kid)), id="unregistered-key-same-kid"),
    pytest.param(lambda c: sign(c.claims(), new_client_key("ES256")), id="unregistered-key-other-kid"),
    pytest.param(lambda c: sign(c.claims(), new_client_key("RS256", kid=c.key.kid)), id="alg-not-the-registered-alg"),
    pytest.param(lambda c: unsigned(c.claims(), c.key.kid), id="alg-none"),
    pytest.param(lambda c: hmac_with_public_key(c.claims(), c.key), id="hs256-keyed-with-public-key"),
    pytest.param(lambda c: sign(c.claims(), c.key, crit=["exp"]), id="crit-header"),
    pytest.param(lambda c: c.assertion()[:-4] + "AAAA", id="signature-altered"),
    pytest.param(lambda c: "not-a-jwt", id="not-a-jwt"),
    pytest.param(lambda c: "a.b.c", id="garbage-segments"),
]


@pytest.mark.parametrize("build", HOSTILE)
async def test_hostile_assertion_is_invalid_client(http, jwt_client, build: Build):
    """An assertion breaking one RFC 7523 §3 / RFC 8725 rule is 401 invalid_client with the generic description."""
    response = await _token(http, build(jwt_client))

    assert response.status_code == 401
    assert response.json() == FAILED
    assert response.headers["cache-control"] == "no-store"
    assert "www-authenticate" not in response.headers


async def test_replayed_assertion_is_refused(http, jwt_client):
    """RFC 7523 §3 item 7: a jti is single-use within the assertion's lifetime."""
    assertion = jwt_client.assertion()
    first = await _token(http, assertion)
    second = await _token(http, assertion)

    assert first.status_code == 200, first.text
    assert second.status_code == 401
    assert second.json() == FAILED


async def test_reused_jti_in_a_new_assertion_is_refused(http, jwt_client):
    """A fresh signature does not make a used jti usable again."""
    jti = "the-same-jti"
    first = await _token(http, jwt_client.assertion(jti=jti))
    second = await _token(http, jwt_client.assertion(jti=jti, iat=_now() - 1))

    assert first.status_code == 200, first.text
    assert second.status_code == 401
    assert second.json() == FAILED


async def test_same_jti_from_two_clients_is_two_assertions(http, register, settings, jwt_client):
    """Replay protection is per client: another client may happen to use the same jti."""
    key = new_client_key("ES256")
    other = await register(auth_method="private_key_jwt", jwks=key.jwks)
    jti = "shared-jti"
    first = await _token(http, jwt_client.assertion(jti=jti))
    second = await _token(http, sign(assertion_claims(other["client_id"], settings.issuer, jti=jti), key))

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text


async def test_token_endpoint_audience_accepted_only_with_compat_flag(http, register, settings):
    """A client flagged token_endpoint_audience may use the token endpoint URL as aud; the issuer still works."""
    key = new_client_key("ES256")
    client = await register(auth_method="private_key_jwt", jwks=key.jwks, token_endpoint_audience=True)
    compat = JwtClient(client["client_id"], key, settings.issuer)

    by_endpoint = await _token(http, compat.assertion(aud=compat.token_endpoint))
    by_issuer = await _token(http, compat.assertion())
    by_array = await _token(http, compat.assertion(aud=[compat.token_endpoint]))

    assert by_endpoint.status_code == 200, by_endpoint.text
    assert by_issuer.status_code == 200, by_issuer.text
    assert by_array.status_code == 401
    assert by_array.json() == FAILED


async def test_lifetime_limit_follows_setting(tmp_path, db_url):
    """client_assertion_max_lifetime is a setting: exp within it is accepted, beyond it refused."""
    settings = make_settings(db_url, tmp_path, client_assertion_max_lifetime=30)
    await prepare(settings)
    ctx = await open_context(settings)
    try:
        key = new_client_key("ES256")
        client = await admin.create_client(
            ctx.database,
            ctx.hasher,
            admin.NewClient(name="c", grants=("client_credentials",), auth_method="private_key_jwt", jwks=key.jwks),
        )
        jc = JwtClient(client["client_id"], key, settings.issuer)
        transport = httpx.ASGITransport(app=create_app(settings, ctx), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            inside = await _token(http, jc.assertion(exp=_now() + 25))
            beyond = await _token(http, jc.assertion(exp=_now() + 60))
    finally:
        await ctx.close()

    assert inside.status_code == 200, inside.text
    assert beyond.status_code == 401
    assert beyond.json() == FAILED


async def test_client_id_parameter_must_name_the_assertion_client(http, jwt_client):
    """client_id next to an assertion must be the assertion's client; its own id is fine."""
    matching = await _token(http, jwt_client.assertion(), client_id=jwt_client.client_id)
    other = await _token(http, jwt_client.assertion(), client_id="another-client")

    assert matching.status_code == 200, matching.text
    assert other.status_code == 401
    assert other.json() == FAILED


async def test_kid_less_assertion_uses_the_registered_key(http, register, settings):
    """Without a kid the registered key of the assertion's algorithm verifies it."""
    key = new_client_key("ES256")
    client = await register(auth_method="private_key_jwt", jwks=key.jwks)
    assertion = jwt.encode(assertion_claims(client["client_id"], settings.issuer), key.private_key, algorithm="ES256")
    response = await _token(http, assertion)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"])
async def test_advertised_assertion_algorithms_work(http, register, settings, alg):
    """Every family in token_endpoint_auth_signing_alg_values_supported really authenticates."""
    key = new_client_key(alg)
    client = await register(auth_method="private_key_jwt", jwks=key.jwks)
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    response = await _token(http, sign(assertion_claims(client["client_id"], settings.issuer), key))

    assert alg in metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert response.status_code == 200, response.text


async def test_rsa_key_registered_without_alg_refuses_hmac_confusion(http, register, settings):
    """Even when the registered JWK names no alg, HS256 keyed with the public key is refused (RFC 8725 §3.1)."""
    key = new_client_key("RS256")
    jwk = {k: v for k, v in key.public_jwk.items() if k != "alg"}
    client = await register(auth_method="private_key_jwt", jwks={"keys": [jwk]})
    forged = hmac_with_public_key(assertion_claims(client["client_id"], settings.issuer), key)
    genuine = sign(assertion_claims(client["client_id"], settings.issuer), key)

    refused = await _token(http, forged)
    accepted = await _token(http, genuine)

    assert refused.status_code == 401
    assert refused.json() == FAILED
    assert accepted.status_code == 200, accepted.text


async def test_assertion_within_leeway_after_exp_cannot_be_replayed(http, jwt_client):
    """An assertion accepted inside the leeway after its exp stays single-use until it can no longer be accepted."""
    assertion = jwt_client.assertion(iat=_now() - 60, exp=_now() - 5)
    first = await _token(http, assertion)
    replay = await _token(http, assertion)

    assert first.status_code == 200, first.text
    assert replay.status_code == 401
    assert replay.json() == FAILED


async def test_kid_less_assertion_signed_by_any_registered_key(http, register, settings):
    """A client that registered two keys (its own rotation) and sends no kid is verified by whichever key signed."""
    first, second = new_client_key("ES256"), new_client_key("ES256")
    client = await register(auth_method="private_key_jwt", jwks={"keys": [first.public_jwk, second.public_jwk]})
    by_first = jwt.encode(assertion_claims(client["client_id"], settings.issuer), first.private_key, algorithm="ES256")
    by_second = jwt.encode(
        assertion_claims(client["client_id"], settings.issuer), second.private_key, algorithm="ES256"
    )

    first_response = await _token(http, by_first)
    second_response = await _token(http, by_second)

    assert first_response.status_code == 200, first_response.text
    assert second_response.status_code == 200, second_response.text
