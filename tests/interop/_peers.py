"""Talking to a live Bastion server the way third-party software does, for the interop tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests._live import LiveServer

VERIFY_JOSE = Path(__file__).with_name("verify_jose.mjs")
RFC8414_DISCOVERY = "/.well-known/oauth-authorization-server"
OIDC_DISCOVERY = "/.well-known/openid-configuration"


def audience(server: LiveServer) -> str:
    """The default access-token audience of a server started without BASTION_DEFAULT_AUDIENCE."""
    return server.url + "/api"


def discover(server: LiveServer, path: str = RFC8414_DISCOVERY) -> dict[str, Any]:
    """The server's metadata document (RFC 8414 §3 by default)."""
    metadata: dict[str, Any] = httpx.get(server.url + path, timeout=10).json()
    return metadata


def create_reader(server: LiveServer, *extra: str) -> dict[str, Any]:
    """A client-credentials client with scope `read`, registered with the real CLI."""
    return server.create_client("--name", "interop reader", "--grant", "client_credentials", "--scope", "read", *extra)


def client_credentials_token(server: LiveServer, client: dict[str, Any], scope: str = "read") -> str:
    """An access token from POST /token over real HTTP, client_secret_basic."""
    response = httpx.post(
        server.url + "/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    if response.status_code != 200:
        raise AssertionError(f"POST /token answered {response.status_code}: {response.text}")
    return str(response.json()["access_token"])


def verify_with_jose(node_dir: Path, discovery_url: str, expected_audience: str, token: str) -> dict[str, Any]:
    """Run verify_jose.mjs (the npm package `jose`) and return its JSON verdict."""
    result = subprocess.run(
        [
            "node",
            "--input-type=module",
            "-e",
            VERIFY_JOSE.read_text(encoding="utf-8"),
            discovery_url,
            expected_audience,
        ],
        cwd=node_dir,
        input=token,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if not result.stdout.strip():
        raise AssertionError(f"verify_jose.mjs printed nothing (exit {result.returncode}): {result.stderr}")
    verdict: dict[str, Any] = json.loads(result.stdout)
    if verdict["valid"] != (result.returncode == 0):
        raise AssertionError(f"verify_jose.mjs exit {result.returncode} contradicts {verdict}")
    return verdict


def resign_with_foreign_key(token: str, kid: str) -> str:
    """The same header and claims, signed by a fresh P-256 key the server never published."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    foreign = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, foreign, algorithm="ES256", headers={"typ": header["typ"], "kid": kid})


def alter_payload(token: str, **changes: Any) -> str:
    """The token with claims changed in its payload, keeping the original header and signature."""
    header_b64, _, signature_b64 = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    payload_b64 = jwt.utils.base64url_encode(json.dumps(claims, separators=(",", ":")).encode()).decode()
    return f"{header_b64}.{payload_b64}.{signature_b64}"
