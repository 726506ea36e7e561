"""deploy/nginx/bastion.conf: a real nginx (rootless, `nginx -p DIR`) in front of a real `bastion serve`.

The recipe runs as shipped but for its ports and file paths, replaced line by line (each
replacement must match exactly, so the recipe cannot drift from what is tested).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.config import Settings
from tests._live import LiveServer, free_port, start_server
from tests._tls import Pki, make_pki
from tests.conftest import prepare
from tests.server._addresses import new_address

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "deploy" / "nginx" / "bastion.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ATTEMPTS = 20  # client_auth_failures_per_address, the default: 20 a minute

pytestmark = pytest.mark.anyio


# -- nginx running the recipe -------------------------------------------------------------------


@dataclass
class Nginx:
    https: str
    http: str
    pki: Pki
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, *, cert: tuple[Path, Path] | None = None, address: str | None = None) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        if cert is not None:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        transport = httpx.AsyncHTTPTransport(verify=context, local_address=address)
        return httpx.AsyncClient(base_url=self.https, transport=transport, timeout=30)


def recipe_for(https_port: int, http_port: int, upstream_port: int, pki: Pki) -> str:
    """The recipe with this test's ports and files; every line replaced must be there exactly once."""
    text = RECIPE.read_text()
    replacements = {
        "    listen 443 ssl;": f"    listen 127.0.0.1:{https_port} ssl;",
        "    listen 80;": f"    listen 127.0.0.1:{http_port};",
        "    server 127.0.0.1:8000;": f"    server 127.0.0.1:{upstream_port};",
        "return 301 https://$host$request_uri;": f"return 301 https://$host:{https_port}$request_uri;",
        "/etc/bastion/tls/server.pem": str(pki.server_cert),
        "/etc/bastion/tls/server.key": str(pki.server_key),
        "/etc/bastion/tls/client-ca.pem": str(pki.client_ca),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"the recipe no longer has `{old}` once"
        text = text.replace(old, new)
    return text


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited {process.returncode}: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port}: {log.read_text()}")


@contextmanager
def running_nginx(directory: Path, https_port: int, upstream_port: int, pki: Pki) -> Iterator[Nginx]:
    """nginx running the recipe on loopback, without root, everything it writes inside `directory`."""
    directory.mkdir()
    (directory / "tmp").mkdir()
    http_port = free_port()
    (directory / "bastion.conf").write_text(recipe_for(https_port, http_port, upstream_port, pki))
    (directory / "nginx.conf").write_text(
        "worker_processes 1;\npid nginx.pid;\nevents { worker_connections 64; }\n"
        "http {\n    access_log access.log;\n    client_body_temp_path tmp/body;\n"
        "    proxy_temp_path tmp/proxy;\n    fastcgi_temp_path tmp/fastcgi;\n    uwsgi_temp_path tmp/uwsgi;\n"
        "    scgi_temp_path tmp/scgi;\n    include bastion.conf;\n}\n"
    )
    log = directory / "nginx.log"
    with log.open("wb") as out:
        process = subprocess.Popen([NGINX, "-p", str(directory), "-c", "nginx.conf", "-e", "error.log",
                                    "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(https_port, process, log)
        _wait_port(http_port, process, log)
        yield Nginx(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", pki, process, log)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def proxied(settings: Settings, tmp_path: Path, pki: Pki) -> Iterator[tuple[Nginx, LiveServer]]:
    """`bastion serve` on loopback believing only nginx, its issuer the https URL nginx serves."""
    asyncio.run(prepare(settings))
    https_port = free_port()
    server = start_server(settings, tmp_path, BASTION_BEHIND_PROXY="1", BASTION_TRUSTED_PROXIES="127.0.0.1",
                          BASTION_ISSUER=f"https://127.0.0.1:{https_port}")
    try:
        with running_nginx(tmp_path / "nginx", https_port, int(server.url.rsplit(":", 1)[1]), pki) as nginx:
            yield nginx, server
    finally:
        server.stop()


# -- the tests -----------------------------------------------------------------------------------


async def test_discovery_through_nginx_names_https_endpoints(proxied: tuple[Nginx, LiveServer]) -> None:
    """Over TLS through nginx the discovery document's issuer and endpoints are the https URL clients use, with HSTS."""
    nginx, _ = proxied
    async with nginx.client() as client:
        answer = await client.get("/.well-known/openid-configuration")
    assert answer.status_code == 200, answer.text
    metadata = answer.json()
    assert metadata["issuer"] == nginx.https
    for key in ("token_endpoint", "jwks_uri", "authorization_endpoint", "revocation_endpoint"):
        assert metadata[key].startswith(nginx.https + "/"), (key, metadata[key])
    assert answer.headers["strict-transport-security"] == "max-age=63072000"
    assert "nginx/" not in answer.headers.get("server", "")  # no version advertised


async def test_a_token_request_works_through_nginx(proxied: tuple[Nginx, LiveServer]) -> None:
    """A client-credentials token request through nginx is 200; the token names the https issuer."""
    nginx, server = proxied
    registered = server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    async with nginx.client() as client:
        answer = await client.post("/token", data={"grant_type": "client_credentials", "scope": "read"},
                                   auth=(registered["client_id"], registered["client_secret"]))
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["iss"] == nginx.https


async def test_a_spoofed_x_forwarded_for_does_not_change_the_limited_address(
        proxied: tuple[Nginx, LiveServer]) -> None:
    """Wrong secrets from one address, each claiming another X-Forwarded-For, are counted for the
    address nginx saw: refused 429 after the limit, while a client at another address is served."""
    nginx, server = proxied
    registered = server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    attacker, honest = new_address(), new_address()
    answers = []
    async with nginx.client(address=attacker) as client:
        for i in range(ATTEMPTS + 3):
            answer = await client.post("/token", data={"grant_type": "client_credentials"},
                                       auth=(registered["client_id"], "guess"),
                                       headers={"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"198.51.100.{i}",
                                                "Forwarded": f"for=198.51.100.{i}"})
            answers.append(answer.status_code)
    assert answers == [401] * ATTEMPTS + [429] * 3
    assert answer.json()["error"] == "rate_limited"
    async with nginx.client(address=honest) as client:
        served = await client.post("/token", data={"grant_type": "client_credentials"},
                                   auth=(registered["client_id"], registered["client_secret"]))
    assert served.status_code == 200, served.text


async def test_plain_http_is_redirected_for_reading_and_refused_for_the_rest(
        proxied: tuple[Nginx, LiveServer]) -> None:
    """Plain HTTP: a GET is sent to the https URL; a POST carrying a secret is refused, never forwarded."""
    nginx, _ = proxied
    async with httpx.AsyncClient(base_url=nginx.http, timeout=30) as client:
        read = await client.get("/.well-known/openid-configuration?x=1")
        post = await client.post("/token", data={"grant_type": "client_credentials"}, auth=("c", "s"))
    assert read.status_code == 301
    assert read.headers["location"] == nginx.https + "/.well-known/openid-configuration?x=1"
    assert post.status_code == 403
    assert "access_token" not in post.text


async def test_client_certificates_are_verified_against_the_client_ca(proxied: tuple[Nginx, LiveServer]) -> None:
    """mTLS is optional: no certificate and the client CA's certificate are served; another CA's
    certificate is refused by nginx."""
    nginx, _ = proxied
    async with nginx.client() as plain, nginx.client(cert=nginx.pki.client) as mtls, \
            nginx.client(cert=nginx.pki.stranger) as stranger:
        assert (await plain.get("/jwks")).status_code == 200
        assert (await mtls.get("/jwks")).status_code == 200
        refused = await stranger.get("/jwks")
    assert refused.status_code == 400
    assert "SSL certificate error" in refused.text


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"], ids=["tls1.0", "tls1.1"])
def test_old_tls_versions_are_refused(pki: Pki, tmp_path: Path, version: str) -> None:
    """nginx answers a TLS 1.0 or 1.1 handshake with the protocol_version alert; TLS 1.2 and 1.3 succeed."""
    with running_nginx(tmp_path / "nginx", free_port(), free_port(), pki) as nginx:
        port = int(nginx.https.rsplit(":", 1)[1])
        assert _handshake(port, pki, "TLSv1_2") == "TLSv1.2"
        assert _handshake(port, pki, "TLSv1_3") == "TLSv1.3"
        assert "ALERT_PROTOCOL_VERSION" in _handshake(port, pki, version)


def _handshake(port: int, pki: Pki, version: str) -> str:
    """The version negotiated, or the reason the handshake failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(pki.ca))
    context.set_ciphers("ALL:@SECLEVEL=0")  # so the client offers what an old one would
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are deprecated: that is the point
        context.minimum_version = context.maximum_version = ssl.TLSVersion[version]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return str(tls.version())
    except ssl.SSLError as exc:
        return str(exc.reason)


@pytest.fixture
def echoed(tmp_path: Path, pki: Pki) -> Iterator[Nginx]:
    """The recipe in front of an upstream that answers with the headers it received."""
    echo_port = free_port()
    echo = subprocess.Popen([sys.executable, str(ROOT / "tests" / "edge" / "_echo.py"), str(echo_port)])
    try:
        with running_nginx(tmp_path / "nginx", free_port(), echo_port, pki) as nginx:
            _wait_port(echo_port, echo, nginx.log)
            yield nginx
    finally:
        echo.terminate()
        echo.wait(10)


async def test_the_client_certificate_reaches_bastion_only_verified(echoed: Nginx, pki: Pki) -> None:
    """Bastion receives X-Client-Cert (URL-escaped PEM) for a verified certificate, and no copy a
    client wrote itself; X-Forwarded-For is nginx's view of the client (seen by an echoing upstream)."""
    spoof = {"X-Client-Cert": "forged", "X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "http"}
    async with echoed.client() as plain, echoed.client(cert=pki.client) as mtls:
        without = _headers((await plain.get("/token", headers=spoof)).json())
        with_cert = _headers((await mtls.get("/token", headers=spoof)).json())
    assert "x-client-cert" not in without
    assert without["x-forwarded-for"] == ["127.0.0.1"]
    assert without["x-forwarded-proto"] == ["https"]
    sent = urllib.parse.unquote(with_cert["x-client-cert"][0])
    assert sent.strip() == pki.client[0].read_text().strip()
    assert with_cert["x-forwarded-for"] == ["127.0.0.1"]


def _headers(echoed: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in echoed["headers"]:
        found.setdefault(name, []).append(value)
    return found
