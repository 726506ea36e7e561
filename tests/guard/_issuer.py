"""A tiny real issuer for the guard's tests: its own keys, discovery, JWKS and revocations.

It mints tokens shaped like Bastion's RFC 9068 access tokens and serves its metadata from a
real uvicorn server on a free loopback port (a thread of the test process, not a mock).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

AUDIENCE = "https://api.test"
CLIENT_ID = "web-client"
REVOCATION_CLIENT = ("guard", "guard-secret")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


class TestIssuer:
    """Keys, token minting and metadata of one issuer."""

    __test__ = False

    def __init__(self, issuer: str = "http://issuer.test") -> None:
        self.issuer = issuer
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_kid = "ec-" + uuid.uuid4().hex[:8]
        self.rsa_kid = "rsa-" + uuid.uuid4().hex[:8]
        self.revocations: list[dict[str, Any]] = []
        self.jwks_max_age = 300
        self.extra_keys: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.opaque: dict[str, dict[str, Any]] = {}

    def public_jwks(self) -> dict[str, Any]:
        ec_jwk = ECAlgorithm.to_jwk(self.ec_key.public_key(), as_dict=True)
        rsa_jwk = RSAAlgorithm.to_jwk(self.rsa_key.public_key(), as_dict=True)
        ec_jwk |= {"kid": self.ec_kid, "use": "sig", "alg": "ES256"}
        rsa_jwk |= {"kid": self.rsa_kid, "use": "sig"}
        return {"keys": [ec_jwk, rsa_jwk, *self.extra_keys]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": AUDIENCE,
            "exp": now + 300,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "client_id": CLIENT_ID,
            "scope": "notes:read notes:write",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(
        self,
        alg: str = "ES256",
        *,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A signed access token; `header` overrides header members (None removes one)."""
        body = self.claims(**claims)
        for name in drop:
            body.pop(name, None)
        key = self.ec_key if alg.startswith("ES") else self.rsa_key
        kid = self.ec_kid if alg.startswith("ES") else self.rsa_kid
        hdr: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": kid}
        hdr.update(header or {})
        hdr = {k: v for k, v in hdr.items() if v is not None}
        signing_input = f"{b64json(hdr)}.{b64json(body)}".encode()
        signature = jwt.get_algorithm_by_name(alg).sign(signing_input, key)
        return f"{signing_input.decode()}.{b64(signature)}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "token_endpoint": f"{self.issuer}/token",
            "introspection_endpoint": f"{self.issuer}/introspect",
        }

    def revoke(self, jti: str, exp: int) -> None:
        self.revocations.append({"jti": jti, "exp": exp, "revoked_at": int(time.time())})

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            self.requests.append(request.url.path)
            return JSONResponse(self.discovery())

        async def jwks(request: Request) -> Response:
            self.requests.append(request.url.path)
            return JSONResponse(
                self.public_jwks(),
                headers={"Cache-Control": f"public, max-age={self.jwks_max_age}"},
            )

        async def revocations(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            expected = "Basic " + base64.b64encode(":".join(REVOCATION_CLIENT).encode()).decode()
            if auth != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            since = int(request.query_params.get("since", "0"))
            items = [r for r in self.revocations if r["revoked_at"] >= since]
            return JSONResponse({"revocations": items, "until": int(time.time())})

        async def introspect(request: Request) -> Response:
            self.requests.append(request.url.path)
            auth = request.headers.get("authorization", "")
            expected = "Basic " + base64.b64encode(":".join(REVOCATION_CLIENT).encode()).decode()
            if auth != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            form = dict(parse_qsl((await request.body()).decode()))
            answer = self.opaque.get(form.get("token", ""), {"active": False})
            return JSONResponse(answer)

        return Starlette(
            routes=[
                Route("/introspect", introspect, methods=["POST"]),
                Route("/.well-known/openid-configuration", discovery),
                Route("/.well-known/oauth-authorization-server", discovery),
                Route("/jwks", jwks),
                Route("/revocations", revocations),
            ]
        )


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app on a real uvicorn server on a free loopback port; yields its base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # generous: CI machines are shared and loaded
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@contextmanager
def running_issuer() -> Iterator[TestIssuer]:
    """A TestIssuer whose identifier is the base URL of its own running server."""
    issuer = TestIssuer()
    with serve_in_thread(issuer.app()) as base:
        issuer.issuer = base
        yield issuer
