"""A JWS whose `alg` does not fit the key its `kid` names, and client assertions dated in the
future, through a real `bastion serve` process on both databases.

Every JWS the server verifies with a key chosen by `kid` (client assertions, the `id_token_hint`
of RP-initiated logout) must refuse an algorithm that does not fit the key (RFC 8725 §3.1,
RFC 7518 §3.1) with the endpoint's own protocol error, never a 500: the refusal is audited and
counted like any other failure. One server per database serves the module, with the
client-authentication failure limits off (this module fails on purpose more often than they
allow).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests._live import start_server
from tests.conftest import make_settings, prepare
from tests.server._jose import ClientKey, assertion_claims, assertion_form, new_client_key
from tests.server.test_live_negative import Live, _create_postgres_database, _drop_postgres_database

pytestmark = pytest.mark.server

CC = {"grant_type": "client_credentials"}
FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}
NO_FAILURE_LIMITS = """
[ratelimit.policies.client_auth_failures_per_client]
enabled = false
[ratelimit.policies.client_auth_failures_per_address]
enabled = false
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live-keyfit")
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'bastion.db'}"
    else:
        pg_name = f"bastion_keyfit_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
        url = asyncio.run(_create_postgres_database(pg_name))
    try:
        settings = make_settings(url, tmp, client_cache_seconds=1)
        asyncio.run(prepare(settings))
        config = tmp / "bastion.toml"
        config.write_text(NO_FAILURE_LIMITS, encoding="utf-8")
        server = start_server(settings, tmp, args=("--config", str(config)))
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                yield Live(server, settings, http)
        finally:
            server.stop()
    finally:
        if pg_name is not None:
            asyncio.run(_drop_postgres_database(pg_name))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _signed_by(signer: ClientKey, claims: dict[str, Any], kid: str, **header: Any) -> str:
    """A JWS signed with `signer`'s private key and algorithm, naming another key's `kid`."""
    return jwt.encode(claims, signer.private_key, algorithm=signer.alg, headers={"kid": kid, **header})


def _hs256(claims: dict[str, Any], kid: str, secret: bytes) -> str:
    signing_input = f"{_segment({'alg': 'HS256', 'kid': kid, 'typ': 'JWT'})}.{_segment(claims)}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _jwk_without_alg(key: ClientKey) -> dict[str, Any]:
    """The registered JWK without `alg`: every algorithm of its key type is a candidate, the
    widest a client may register (RFC 7517 §4.4: alg is OPTIONAL)."""
    return {k: v for k, v in key.public_jwk.items() if k != "alg"}


def _pem(key: ClientKey) -> bytes:
    return key.public_pem()


# (registered key's alg, how the attacker signs, given the registered key and claims)
Forge = Callable[[ClientKey, dict[str, Any]], str]
MISFITS: list[Any] = [
    pytest.param("RS256", lambda reg, c: _signed_by(new_client_key("ES256"), c, reg.kid), id="ES256-with-RSA-kid"),
    pytest.param("ES256", lambda reg, c: _signed_by(new_client_key("RS256"), c, reg.kid), id="RS256-with-EC-kid"),
    pytest.param("ES256", lambda reg, c: _signed_by(new_client_key("ES384"), c, reg.kid), id="ES384-with-P256-kid"),
    pytest.param("RS256", lambda reg, c: _signed_by(new_client_key("EdDSA"), c, reg.kid), id="EdDSA-with-RSA-kid"),
    pytest.param("EdDSA", lambda reg, c: _signed_by(new_client_key("ES256"), c, reg.kid), id="ES256-with-OKP-kid"),
    pytest.param("EdDSA", lambda reg, c: _signed_by(new_client_key("RS256"), c, reg.kid), id="RS256-with-OKP-kid"),
    pytest.param("RS256", lambda reg, c: _hs256(c, reg.kid, _pem(reg)), id="HS256-keyed-with-RSA-public-key"),
    pytest.param("ES256", lambda reg, c: _hs256(c, reg.kid, _pem(reg)), id="HS256-keyed-with-EC-public-key"),
]


def _audited_failure(live: Live, client_id: str) -> bool:
    return any(
        '"client_authentication_failed"' in line and client_id in line for line in live.log().splitlines()
    )


@pytest.mark.parametrize(("registered_alg", "forge"), MISFITS)
def test_assertion_alg_not_fitting_the_kid_key_is_invalid_client(live, registered_alg: str, forge: Forge):
    """An assertion whose alg does not fit the key its kid names is 401 invalid_client, audited."""
    registered = new_client_key(registered_alg)
    client = live.register(auth_method="private_key_jwt", jwks={"keys": [_jwk_without_alg(registered)]})
    claims = assertion_claims(client["client_id"], live.url)

    response = live.http.post("/token", data={**CC, **assertion_form(forge(registered, claims))})

    assert response.status_code == 401, response.text
    assert response.json() == FAILED
    assert _audited_failure(live, client["client_id"])


@pytest.mark.parametrize(
    "member",
    [
        pytest.param({"alg": ["ES256"]}, id="alg-a-list"),
        pytest.param({"alg": {"name": "ES256"}}, id="alg-an-object"),
        pytest.param({"crv": ["P-256"]}, id="crv-a-list"),
        pytest.param({"kty": ["EC"]}, id="kty-a-list"),
        pytest.param({"use": ["sig"]}, id="use-a-list"),
    ],
)
def test_registered_jwk_with_a_non_string_member_verifies_nothing(live, member: dict[str, Any]):
    """A registered JWK whose kty/crv/alg/use is not a string is never trusted: 401, not a 500."""
    key = new_client_key("ES256")
    client = live.register(auth_method="private_key_jwt", jwks={"keys": [{**key.public_jwk, **member}]})
    assertion = jwt.encode(
        assertion_claims(client["client_id"], live.url), key.private_key, algorithm="ES256", headers={"kid": key.kid}
    )

    response = live.http.post("/token", data={**CC, **assertion_form(assertion)})

    assert response.status_code == 401, response.text
    assert response.json() == FAILED
    assert _audited_failure(live, client["client_id"])


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        pytest.param(lambda now: {"iat": now + 200, "exp": now + 250}, False, id="iat-200s-ahead"),
        pytest.param(lambda now: {"iat": now + 3600, "exp": now + 3650}, False, id="iat-an-hour-ahead"),
        pytest.param(lambda now: {"iat": str(now)}, False, id="iat-a-string"),
        pytest.param(lambda now: {"nbf": str(now + 600)}, False, id="nbf-a-string"),
        pytest.param(lambda now: {"iat": now + 5}, True, id="iat-within-leeway"),
    ],
)
def test_assertion_dated_in_the_future_is_invalid_client(live, changes: Callable[[int], dict[str, Any]], accepted):
    """RFC 7519 §4.1.6: an assertion whose iat is beyond the clock leeway (or not a NumericDate) is refused."""
    key = new_client_key("ES256")
    client = live.register(auth_method="private_key_jwt", jwks=key.jwks)
    claims = assertion_claims(client["client_id"], live.url, **changes(int(time.time())))
    assertion = jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})

    response = live.http.post("/token", data={**CC, **assertion_form(assertion)})

    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401, response.text
        assert response.json() == FAILED
        assert _audited_failure(live, client["client_id"])


def _server_rsa_kid(live: Live) -> str:
    keys = live.http.get("/jwks").json()["keys"]
    return next(k["kid"] for k in keys if k["kty"] == "RSA")


def _hint_claims(live: Live, client_id: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": live.url, "sub": "someone", "aud": client_id, "iat": now, "exp": now + 300}


HINT_MISFITS: list[Any] = [
    pytest.param(lambda kid, c: _signed_by(new_client_key("ES256"), c, kid, typ="JWT"), id="ES256-with-RSA-kid"),
    pytest.param(lambda kid, c: _signed_by(new_client_key("EdDSA"), c, kid, typ="JWT"), id="EdDSA-with-RSA-kid"),
    pytest.param(lambda kid, c: _signed_by(new_client_key("PS256"), c, kid, typ="JWT"), id="PS256-foreign-key"),
    pytest.param(lambda kid, c: _hs256(c, kid, b"guessed"), id="HS256"),
]


@pytest.mark.parametrize("forge", HINT_MISFITS)
def test_logout_hint_not_fitting_the_kid_key_is_no_hint(live, forge: Callable[[str, dict[str, Any]], str]):
    """An id_token_hint whose alg does not fit our key under its kid names no client: logout does
    not redirect to the client's post_logout_redirect_uri (400 page, never a 500)."""
    client = live.register(
        grants=("authorization_code",),
        redirect_uris=("https://rp.example/cb",),
        post_logout_redirect_uris=("https://rp.example/bye",),
    )
    hint = forge(_server_rsa_kid(live), _hint_claims(live, client["client_id"]))

    response = live.http.get(
        "/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example/bye"}
    )
    bare = live.http.get("/logout", params={"id_token_hint": hint})

    assert response.status_code == 400
    assert "The post_logout_redirect_uri is not registered for this client." in response.text
    assert "location" not in response.headers
    assert bare.status_code == 200
    assert "location" not in bare.headers


@pytest.mark.parametrize("forge", HINT_MISFITS)
def test_authorize_ignores_a_misfit_id_token_hint(live, forge: Callable[[str, dict[str, Any]], str]):
    """/authorize answers a request carrying a forged id_token_hint exactly as it answers one without it."""
    client = live.register(grants=("authorization_code",), redirect_uris=("https://rp.example/cb",))
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": "https://rp.example/cb",
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    hint = forge(_server_rsa_kid(live), _hint_claims(live, client["client_id"]))

    with_hint = live.http.get("/authorize", params={**params, "id_token_hint": hint})
    without = live.http.get("/authorize", params=params)

    assert with_hint.status_code == without.status_code < 500
    assert urlpath(with_hint) == urlpath(without)


def urlpath(response: httpx.Response) -> str:
    return httpx.URL(response.headers.get("location", "")).path


@pytest.fixture
def jwks_uri_answering() -> Iterator[Callable[[bytes], str]]:
    """A loopback HTTP server answering every GET with the body given, as a client's jwks_uri."""
    bodies: list[bytes] = [b""]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(bodies[0])

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(body: bytes) -> str:
        bodies[0] = body
        return f"http://127.0.0.1:{server.server_address[1]}/jwks"

    try:
        yield serve
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="a-list"),
        pytest.param(b'"keys"', id="a-string"),
        pytest.param(b'{"keys": [{"kty": "EC", "alg": ["ES256"]}]}', id="alg-a-list"),
    ],
)
def test_jwks_uri_answering_no_key_set_is_invalid_client(live, jwks_uri_answering, body: bytes):
    """A jwks_uri whose answer is no JWK Set (RFC 7517 §5) verifies nothing: 401, audited, never a 500."""
    key = new_client_key("ES256")
    client = live.register(auth_method="private_key_jwt", jwks_uri=jwks_uri_answering(body))
    assertion = jwt.encode(
        assertion_claims(client["client_id"], live.url), key.private_key, algorithm="ES256", headers={"kid": key.kid}
    )

    response = live.http.post("/token", data={**CC, **assertion_form(assertion)})

    assert response.status_code == 401, response.text
    assert response.json() == FAILED
    assert _audited_failure(live, client["client_id"])
