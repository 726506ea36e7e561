"""Signing-key rotation across two `bastion serve` processes sharing one PostgreSQL database.

The schedule is data in the database, so both processes agree on it within key_cache_seconds:
a new key is published by both before either signs with it, both switch at its activation time,
and every token signed before, during and after the rotation validates against either server's
JWKS and is active at either server's introspection until it expires, retired key or not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest

from tests._live import LiveServer, start_server
from tests.conftest import ISSUER, make_settings, prepare

pytestmark = [pytest.mark.server, pytest.mark.postgres]

# Short windows instead of the defaults: key caches of one second, and eight seconds of
# pre-publication. Measured on a machine loaded to 5x its cores: `bastion keys rotate` returned up
# to 4 s after scheduling the key, both JWKS showed it 0.5 s later, and minting two tokens took
# another 0.5 s; eight seconds leaves room to observe "published but not yet signing".
KEY_CACHE_SECONDS = 1
PREPUBLICATION = 8
AUDIENCE = ISSUER + "/api"

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    """Poll `probe` every 100 ms until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on one database, one issuer (as behind a load balancer)."""
    settings = make_settings(db_url, tmp_path, key_cache_seconds=KEY_CACHE_SECONDS, key_prepublication=PREPUBLICATION)
    asyncio.run(prepare(settings))
    servers: list[LiveServer] = []
    try:
        for _ in range(2):
            servers.append(start_server(settings, tmp_path, BASTION_ISSUER=ISSUER))
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def mint(server: LiveServer, client: dict[str, Any]) -> str:
    response = httpx.post(
        server.url + "/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def published_kids(server: LiveServer) -> set[str]:
    return {key["kid"] for key in httpx.get(server.url + "/jwks", timeout=10).json()["keys"]}


def validate(server: LiveServer, token: str) -> dict[str, Any]:
    """Verify `token` against `server`'s JWKS as a resource server would (key pins the alg)."""
    key = jwt.PyJWKSet.from_dict(httpx.get(server.url + "/jwks", timeout=10).json())[kid(token)]
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=[key.algorithm_name], issuer=ISSUER, audience=AUDIENCE)
    return claims


def introspect(server: LiveServer, introspector: dict[str, Any], token: str) -> dict[str, Any]:
    response = httpx.post(
        server.url + "/introspect",
        data={"token": token},
        auth=(introspector["client_id"], introspector["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cli_json(server: LiveServer, *args: str) -> Any:
    result = server.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_valid_everywhere(
    servers: tuple[LiveServer, LiveServer], introspector: dict[str, Any], tokens: dict[str, str]
) -> None:
    for server in servers:
        for name, token in tokens.items():
            claims = validate(server, token)
            assert introspect(server, introspector, token) == {
                "active": True,
                "token_type": "Bearer",
                **{k: claims[k] for k in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")},
            }, f"{name} at {server.url}"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # two processes share one database server
def test_rotation_across_two_processes(cluster):
    """Tokens signed before, during and after a rotation, on either process, validate everywhere."""
    a, b = cluster
    client = a.create_client("--name", "rotation", "--grant", "client_credentials", "--scope", "read")
    introspector = b.create_client(
        "--name", "resource server", "--grant", "client_credentials", "--introspect", "--audience", AUDIENCE
    )
    tokens = {"before@a": mint(a, client)}
    old_kid = kid(tokens["before@a"])

    rotated = cli_json(a, "keys", "rotate")
    new_kid, activates_at = rotated["kid"], rotated["activates_at"]

    # Pre-publication: both processes publish the new key before either signs with it.
    wait_for("the new key in both JWKS", lambda: True if all(new_kid in published_kids(s) for s in (a, b)) else None)
    tokens["during@a"], tokens["during@b"] = mint(a, client), mint(b, client)
    assert time.time() < activates_at, "the machine was too slow to observe pre-publication"
    assert (kid(tokens["during@a"]), kid(tokens["during@b"])) == (old_kid, old_kid)
    assert published_kids(a) == published_kids(b) >= {old_kid, new_kid}

    # Activation: both processes switch to the new key on their own, by the stored schedule.
    for name, server in (("after@a", a), ("after@b", b)):
        tokens[name] = wait_for(
            f"{server.url} to sign with the new key",
            lambda server=server: token if kid(token := mint(server, client)) == new_kid else None,
        )
    assert validate(a, tokens["after@a"])["iat"] >= activates_at
    assert validate(b, tokens["after@b"])["iat"] >= activates_at
    assert_valid_everywhere((a, b), introspector, tokens)

    # Retirement: the old key stops being a candidate but stays published while its tokens live.
    retired = a.cli("keys", "retire", "--json", "--", old_kid)  # a thumbprint kid may start with "-"
    assert retired.returncode == 0, retired.stderr
    assert json.loads(retired.stdout)["kid"] == old_kid
    states = {key["kid"]: (key["state"], key["published"]) for key in cli_json(b, "keys", "list")}
    assert states[old_kid] == ("retired", True)
    assert states[new_kid] == ("active", True)
    # Let both processes reload the schedule (key_cache_seconds) before checking them again.
    time.sleep(KEY_CACHE_SECONDS + 0.2)
    assert published_kids(a) == published_kids(b) >= {old_kid, new_kid}
    assert kid(mint(a, client)) == kid(mint(b, client)) == new_kid
    assert_valid_everywhere((a, b), introspector, tokens)
