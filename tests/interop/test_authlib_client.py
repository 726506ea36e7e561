"""A client nobody here wrote: Authlib's OAuth 2.0 client gets tokens with every auth method we offer.

client_secret_basic and client_secret_post (RFC 6749 §2.3.1) and private_key_jwt (RFC 7523 §2.2,
Authlib's PrivateKeyJWT with `aud` set to the issuer identifier, as our server requires).
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from tests._live import LiveServer, start_server
from tests.conftest import prepare
from tests.interop._peers import create_reader, discover

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` fork and warns on import when it falls back to httpx,
    # which is what this project (and most of Authlib's users) have installed.
    warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

pytestmark = pytest.mark.server

# The verdict is about Authlib's requests, not storage: a test with its own server uses one database.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _fetch(server: LiveServer, client_id: str, secret: Any, method: str, *auth: PrivateKeyJWT) -> dict[str, Any]:
    """Fetch a client-credentials token with Authlib from the discovered token endpoint."""
    with OAuth2Client(client_id, secret, token_endpoint_auth_method=method, scope="read", timeout=10) as oauth:
        for extra in auth:
            oauth.register_client_auth_method(extra)
        token: dict[str, Any] = oauth.fetch_token(discover(server)["token_endpoint"], grant_type="client_credentials")
    return token


def _check_token(token: dict[str, Any], client_id: str) -> None:
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "read"
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == client_id


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_secret_methods(interop_server, method):
    """Authlib authenticates with the client secret in a Basic header or in the form body."""
    client = create_reader(interop_server, "--auth-method", method)

    token = _fetch(interop_server, client["client_id"], client["client_secret"], method)

    _check_token(token, client["client_id"])


def _client_key(alg: str, tmp_path: Path) -> tuple[Any, Path]:
    """A private key in Authlib's (joserfc's) form, and a JWKS file holding only its public half."""
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        importer: Any = ECKey
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        importer = RSAKey
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = jwt.get_algorithm_by_name(alg).to_jwk(private.public_key(), as_dict=True)
    jwk = {**public, "kid": "authlib-1", "alg": alg, "use": "sig"}
    path = tmp_path / "client-jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    return importer.import_key(pem), path


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_authlib_private_key_jwt(interop_server, tmp_path, alg):
    """Authlib's PrivateKeyJWT, with aud the issuer identifier, authenticates a registered key."""
    key, jwks_file = _client_key(alg, tmp_path)
    client = create_reader(interop_server, "--auth-method", "private_key_jwt", "--jwks", str(jwks_file))
    # Authlib signs one-hour assertions by default; ours accept at most client_assertion_max_lifetime
    # (300 s), so the client states a shorter exp through Authlib's documented `claims`.
    auth = PrivateKeyJWT(
        token_endpoint=interop_server.url, alg=alg, headers={"kid": "authlib-1"}, claims={"exp": int(time.time()) + 120}
    )

    token = _fetch(interop_server, client["client_id"], key, "private_key_jwt", auth)

    _check_token(token, client["client_id"])


def test_authlib_default_assertion_lifetime_is_refused_by_default(interop_server, tmp_path):
    """Authlib's default one-hour assertion exceeds the default 300 s limit: 401 invalid_client."""
    key, jwks_file = _client_key("ES256", tmp_path)
    client = create_reader(interop_server, "--auth-method", "private_key_jwt", "--jwks", str(jwks_file))
    auth = PrivateKeyJWT(token_endpoint=interop_server.url, alg="ES256")

    with pytest.raises(OAuthError) as refused:
        _fetch(interop_server, client["client_id"], key, "private_key_jwt", auth)

    assert (refused.value.error, refused.value.description) == ("invalid_client", "client authentication failed")


@SQLITE_ONLY
def test_authlib_default_assertion_lifetime_works_when_operator_allows_an_hour(settings, tmp_path):
    """With BASTION_CLIENT_ASSERTION_MAX_LIFETIME=3600, Authlib's PrivateKeyJWT works with its defaults but aud."""
    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_CLIENT_ASSERTION_MAX_LIFETIME="3600")
    try:
        key, jwks_file = _client_key("ES256", tmp_path)
        client = create_reader(server, "--auth-method", "private_key_jwt", "--jwks", str(jwks_file))

        token = _fetch(server, client["client_id"], key, "private_key_jwt", PrivateKeyJWT(server.url, alg="ES256"))
    finally:
        server.stop()

    _check_token(token, client["client_id"])
