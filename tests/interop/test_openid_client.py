"""A Node.js client nobody here wrote: openid-client discovers, authenticates, introspects and revokes.

openid-client (on oauth4webapi) signs private_key_jwt assertions with `aud` = the issuer
identifier, the single value our server accepts (RFC 7523 update, FAPI 2.0).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests._live import LiveServer
from tests._services import need_node_package
from tests.interop._peers import audience, create_reader

pytestmark = [pytest.mark.npm, pytest.mark.server]

SCRIPT = Path(__file__).with_name("openid_client.mjs")


@pytest.fixture
def openid_client_dir() -> Path:
    """tests/node with openid-client installed (skips, or fails under BASTION_REQUIRE_SERVICES=1)."""
    return need_node_package("openid-client")


def run_openid_client(
    node_dir: Path, server: LiveServer, client_id: str, method: str, credential: dict[str, Any]
) -> dict[str, Any]:
    """Run openid_client.mjs against `server` and return what it printed."""
    result = subprocess.run(
        ["node", "--input-type=module", "-e", SCRIPT.read_text(encoding="utf-8"), server.url, client_id, method],
        cwd=node_dir,
        input=json.dumps(credential),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def _secret_client(server: LiveServer, method: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    client = create_reader(server, "--auth-method", method, "--introspect", "--audience", audience(server))
    return client["client_id"], {"client_secret": client["client_secret"]}


def _key_client(server: LiveServer, method: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    private = jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    private.update(kid="openid-client-1", alg="ES256")
    public = {k: v for k, v in private.items() if k != "d"}
    jwks_file = tmp_path / "client-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [{**public, "use": "sig"}]}), encoding="utf-8")
    client = create_reader(
        server, "--auth-method", method, "--jwks", str(jwks_file), "--introspect", "--audience", audience(server)
    )
    return client["client_id"], {"private_jwk": private}


@pytest.mark.parametrize(
    ("method", "register"),
    [
        pytest.param("client_secret_basic", _secret_client, id="client_secret_basic"),
        pytest.param("client_secret_post", _secret_client, id="client_secret_post"),
        pytest.param("private_key_jwt", _key_client, id="private_key_jwt"),
    ],
)
def test_openid_client_token_introspection_revocation(interop_server, openid_client_dir, tmp_path, method, register):
    """openid-client gets a token, sees it active, revokes it and sees it inactive, with each auth method."""
    client_id, credential = register(interop_server, method, tmp_path)

    outcome = run_openid_client(openid_client_dir, interop_server, client_id, method, credential)

    token = outcome["token"]
    assert (token["token_type"].lower(), token["scope"], token["expires_in"]) == ("bearer", "read", 600)
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert outcome["introspection"] == {
        "active": True,
        "token_type": "Bearer",
        **{k: claims[k] for k in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")},
    }
    assert outcome["after_revocation"] == {"active": False}
