"""The container image, run as deployed: PostgreSQL, Redis, `bastion-init`, then `serve`.

The image is the one `.ci/container` builds (BASTION_TEST_IMAGE, `localhost/bastion:latest` by
default); without podman or the image these tests skip, and fail under
BASTION_REQUIRE_SERVICES=1. Containers share the host's network to reach the machine's
PostgreSQL and Redis; each run has its own database, dropped afterwards. podman reads
`.ci/containers.conf` unless CONTAINERS_CONF names another configuration.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from tests import _services
from tests._live import free_port

pytestmark = [pytest.mark.container, pytest.mark.postgres, pytest.mark.redis, pytest.mark.server]

IMAGE = os.environ.get("BASTION_TEST_IMAGE", "localhost/bastion:latest")
# Passed by name (`--env NAME`): podman takes the values from its own environment, so the
# secrets never appear on a command line.
SETTINGS = (
    "BASTION_ISSUER",
    "BASTION_DATABASE_URL",
    "BASTION_REDIS_URL",
    "BASTION_KEY_ENCRYPTION_KEY",
    "BASTION_CLIENT_SECRET_PEPPER",
)


def podman_environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.setdefault("CONTAINERS_CONF", str(_services.ROOT / ".ci" / "containers.conf"))
    env.update(settings)
    return env


def podman(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, check=False, timeout=timeout
    )


def need_image(env: dict[str, str]) -> None:
    if shutil.which("podman") is None:
        _services.missing("podman", "run .ci/container (installs podman from Debian and builds the image)")
    if podman(env, "image", "exists", IMAGE).returncode != 0:
        _services.missing(f"the image {IMAGE}", "build it with .ci/container")


@dataclass
class Deployment:
    """The image serving on a free port of the host network, after `bastion-init`."""

    url: str
    container: str
    env: dict[str, str]

    def run(self, *args: str, entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
        """A one-shot container of the image with the deployment's settings (`podman run --rm`)."""
        head = ["run", "--rm", "--network", "host", "--no-healthcheck"]
        head += [f"--env={name}" for name in SETTINGS]
        if entrypoint is not None:
            head += ["--entrypoint", entrypoint]
        return podman(self.env, *head, IMAGE, *args)

    def keys(self) -> list[dict[str, Any]]:
        listed = self.run("keys", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        keys: list[dict[str, Any]] = json.loads(listed.stdout)
        return keys


async def _database(admin_url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _wait_for_health(url: str, env: dict[str, str], container: str) -> None:
    deadline = time.monotonic() + 90  # a loaded 2-core machine starts a container slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if podman(env, "container", "inspect", "--format", "{{.State.Running}}", container).stdout.strip() != "true":
            break
        time.sleep(0.2)
    logs = podman(env, "logs", container)
    raise RuntimeError(f"the container did not serve {url}/health:\n{logs.stdout}{logs.stderr}")


def _serve(deployment: Deployment, port: int) -> None:
    """`serve` as the image's CMD has it (behind a proxy), on a free loopback port of the host
    network; a read-only root with the data directory on a volume, as compose.yaml runs it."""
    started = podman(
        deployment.env,
        "run", "--detach", "--name", deployment.container, "--network", "host",
        "--read-only", "--volume", "/var/lib/bastion",
        # Health checks run when a test asks (`podman healthcheck run`): no timer, which would
        # need systemd.
        "--health-interval", "disable",
        *(f"--env={name}" for name in SETTINGS),
        IMAGE, "serve", "--host", "127.0.0.1", "--port", str(port), "--behind-proxy",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    _wait_for_health(deployment.url, deployment.env, deployment.container)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """A fresh database, `bastion-init` run in the image, then the image serving on it."""
    env = podman_environment()
    need_image(env)
    postgres, redis = _services.need_postgres(), _services.need_redis()
    tag = f"{os.getpid()}_{secrets.token_hex(4)}"
    database = f"bastion_container_{tag}"
    port = free_port()
    env.update(
        {
            "BASTION_ISSUER": f"http://127.0.0.1:{port}",
            "BASTION_DATABASE_URL": postgres.rsplit("/", 1)[0] + "/" + database,
            "BASTION_REDIS_URL": redis,
            "BASTION_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "BASTION_CLIENT_SECRET_PEPPER": secrets.token_urlsafe(32),
        }
    )
    asyncio.run(_database(postgres, f'CREATE DATABASE "{database}"'))
    deployment = Deployment(f"http://127.0.0.1:{port}", f"bastion-test-{tag}", env)
    try:
        init = deployment.run(entrypoint="bastion-init")
        assert init.returncode == 0, init.stderr
        _serve(deployment, port)
        yield deployment
    finally:
        podman(env, "rm", "--force", "--volumes", "--time", "10", deployment.container)
        asyncio.run(_database(postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def test_init_migrates_and_creates_one_key_per_algorithm(deployment: Deployment) -> None:
    """`bastion-init` leaves an active ES256 key for access tokens and an RS256 one for ID tokens."""
    keys = deployment.keys()

    assert sorted((key["alg"], key["state"]) for key in keys) == [("ES256", "active"), ("RS256", "active")]


def test_init_again_changes_nothing(deployment: Deployment) -> None:
    """Running `bastion-init` at every start (compose's init service) adds no key."""
    before = deployment.keys()

    again = deployment.run(entrypoint="bastion-init")

    assert again.returncode == 0, again.stderr
    assert deployment.keys() == before


def test_token_and_discovery_through_the_container(deployment: Deployment) -> None:
    """A client made by the image's CLI gets a client-credentials token from the served image,
    signed by a key that the image's discovery document and JWKS publish."""
    created = deployment.run(
        "clients", "create", "--name", "container", "--grant", "client_credentials", "--scope", "read", "--json"
    )
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)

    discovery = httpx.get(deployment.url + "/.well-known/openid-configuration", timeout=10)
    token = httpx.post(
        discovery.json()["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    jwks = httpx.get(discovery.json()["jwks_uri"], timeout=10)

    assert discovery.status_code == 200
    assert discovery.json()["issuer"] == deployment.url
    assert token.status_code == 200, token.text
    access_token = token.json()["access_token"]
    kid = jwt.get_unverified_header(access_token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks.json())[kid]
    claims = jwt.decode(access_token, key, algorithms=["ES256"], audience=deployment.url + "/api")
    assert claims["iss"] == deployment.url
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "read"


def test_server_runs_as_uid_10001(deployment: Deployment) -> None:
    """The serving process (the container's pid 1) is user and group 10001, not root."""
    status = podman(deployment.env, "exec", deployment.container, "cat", "/proc/1/status")

    assert status.returncode == 0, status.stderr
    fields = dict(line.split(":", 1) for line in status.stdout.splitlines())
    assert fields["Uid"].split() == ["10001"] * 4
    assert fields["Gid"].split() == ["10001"] * 4


def test_healthcheck_finds_the_server_where_it_listens(deployment: Deployment) -> None:
    """The image's HEALTHCHECK passes for a server started on another port than CMD's 8000."""
    checked = podman(deployment.env, "healthcheck", "run", deployment.container)

    health = podman(deployment.env, "container", "inspect", "--format", "{{json .State.Health}}", deployment.container)

    assert checked.returncode == 0, health.stdout
    assert json.loads(health.stdout)["Status"] == "healthy"


def test_image_defaults(deployment: Deployment) -> None:
    """The image serves behind a proxy on port 8000 as user 10001, checked by bastion-healthcheck."""
    inspected = podman(deployment.env, "image", "inspect", IMAGE)
    image = json.loads(inspected.stdout)[0]
    config = image["Config"]

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["bastion"]
    assert config["Cmd"] == ["serve", "--host", "0.0.0.0", "--port", "8000", "--behind-proxy"]  # noqa: S104 - as data
    assert image["Healthcheck"]["Test"] == ["CMD", "bastion-healthcheck"]


def test_healthcheck_fails_without_a_server(deployment: Deployment) -> None:
    """In a container where nothing serves, the health check exits 1 and says why."""
    checked = podman(
        deployment.env, "run", "--rm", "--no-healthcheck", "--network", "none",
        "--entrypoint", "bastion-healthcheck", IMAGE,
    )  # fmt: skip

    assert checked.returncode == 1
    assert checked.stderr.strip() == "unhealthy: no `bastion serve` process in this container"
