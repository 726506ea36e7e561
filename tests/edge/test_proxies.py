"""nginx and Caddy in front, configured by `bastion edge render`, deciding through `bastion edge serve`.

Real processes only: Debian's nginx and Caddy run the rendered configurations without root, a
real decision service answers them, a test issuer signs the tokens, and the upstream is an
echo app that reports exactly what reached it. Every case runs through both proxies; the
attacker's tries (spoofed identity, smuggled headers, ambiguous paths, old TLS, foreign client
certificates) are asserted on what the client got and on what the upstream saw.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bastion.edge.paths import accept
from bastion.guard.apikeys import ApiKeyManager, JsonFileApiKeyStore
from tests._services import missing
from tests.cli._run import bastion, clean_env
from tests.edge._edge import EdgeProcess, running_edge
from tests.guard._issuer import AUDIENCE, TestIssuer, free_port, running_issuer

ROOT = Path(__file__).resolve().parents[2]
BINARIES = {"nginx": "/usr/sbin/nginx", "caddy": "/usr/bin/caddy"}

ROUTES = """\
routes:
  - {path: /notes, methods: [GET, POST], scopes: [notes:read], body: {max: 1k, types: [application/json]}}
  - {path: "/notes/{id}", methods: [GET], scopes: [notes:read]}
  - {path: /admin, methods: [GET], scopes: [admin]}
  - {path: "/public/{name}", methods: [GET], public: true}
  - {path: /limited, methods: [GET], scopes: [notes:read], quotas: [{per: sub, limit: 2, window: minute}]}
  - {path: /bound, methods: [GET], scopes: [notes:read], client_cert: required}
  - {path: /keys, methods: [GET], scopes: [notes:read], api_key: true}
"""
# What may reach the upstream: the policy's default allowlist, Authorization on token routes,
# what the proxy itself sets, and the decision's identity headers.
UPSTREAM_HEADERS = {
    "host", "accept", "accept-language", "content-type", "content-length", "user-agent", "if-none-match",
    "if-match", "authorization", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "x-bastion-sub", "x-bastion-client-id", "x-bastion-scope", "x-bastion-roles", "x-bastion-api-key-id",
    "x-bastion-cert-thumbprint", "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
    "accept-encoding",  # Caddy's transport asks for gzip itself
}


# -- certificates made for the run --------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
                 *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    signer_name, signer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(_name(signer_name)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    return builder.sign(signer_key, hashes.SHA256())


@dataclass
class Pki:
    """The run's certificates: server (for 127.0.0.1), a client CA with one client, a rogue CA with one."""

    directory: Path
    client_thumbprint: str

    def path(self, name: str) -> str:
        return str(self.directory / name)


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None) -> None:
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        (directory / f"{stem}-key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    made: dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}
    for stem, issuer, ca, server in (
        ("server-ca", None, True, False), ("server", "server-ca", False, True),
        ("client-ca", None, True, False), ("client", "client-ca", False, False),
        ("rogue-ca", None, True, False), ("rogue", "rogue-ca", False, False),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        signer = (issuer, made[issuer][1]) if issuer else None
        made[stem] = (_certificate(stem, key, signer, ca=ca, server=server), key)
        _write(directory, stem, *made[stem])
    der = made["client"][0].public_bytes(serialization.Encoding.DER)
    return Pki(directory, urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode())


# -- the parts: issuer, upstream, decision, proxies --------------------------------------------


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60  # generous: the machine is shared
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited {process.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start: {log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as live:
        yield live


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The echo upstream in its own uvicorn process; yields its port."""
    port = free_port()
    log = tmp_path_factory.mktemp("echo") / "echo.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "edge" / "_echo.py"), str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _wait_port(port, process, log, "the echo upstream")
        yield port
    finally:
        _stop(process)


def policy_text(issuer: str, *, listen: int, decision: int, upstream: int, pki: Pki | None) -> str:
    tls = (f"tls: {{cert: {pki.path('server.pem')}, key: {pki.path('server-key.pem')}, "
           f"client_ca: {pki.path('client-ca.pem')}, client_cert: optional}}\n") if pki else ""
    return (f"listen: 127.0.0.1:{listen}\n{tls}decision: 127.0.0.1:{decision}\nissuer: {issuer}\n"
            f"audience: {AUDIENCE}\nupstream: http://127.0.0.1:{upstream}\n"
            f"api_keys: {{file: apikeys.json}}\n{ROUTES}")


@pytest.fixture(scope="module")
def decision_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("decision")


@pytest.fixture(scope="module")
def api_key(decision_dir: Path) -> tuple[str, str]:
    """A key for `notes:read` in the decision's apikeys.json: (key, key id)."""
    key, record = ApiKeyManager(JsonFileApiKeyStore(decision_dir / "apikeys.json")).create("billing", ["notes:read"])
    return key, record.key_id


@pytest.fixture(scope="module")
def decision(issuer: TestIssuer, upstream: int, pki: Pki, decision_dir: Path,
             api_key: tuple[str, str]) -> Iterator[EdgeProcess]:
    """A real `bastion edge serve` for the test routes (its own port; the proxies are told it)."""
    path = decision_dir / "policy.yaml"
    path.write_text(policy_text(issuer.issuer, listen=8443, decision=8600, upstream=upstream, pki=pki))
    with running_edge(path) as process:
        yield process


def need_proxy(name: str) -> str:
    binary = shutil.which(name) or BINARIES[name]
    if not Path(binary).exists():
        missing(name, f"install Debian's {name} package (apt-get install {name})")
    return binary


@dataclass
class Proxy:
    """A proxy running a rendered configuration."""

    name: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]


def render(name: str, policy: Path, directory: Path) -> None:
    result = bastion("edge", "render", name, "--policy", str(policy), "-o", str(directory))
    assert result.returncode == 0, result.stderr


@contextmanager
def running_proxy(name: str, policy: Path, directory: Path, port: int) -> Iterator[Proxy]:
    """`bastion edge render NAME` into `directory`, then the proxy run from there without root."""
    binary = need_proxy(name)
    render(name, policy, directory)
    log = directory / "logs" / "stdout.log"
    if name == "nginx":
        command = [binary, "-p", str(directory), "-c", "nginx.conf", "-e", "logs/error.log", "-g", "daemon off;"]
        env = clean_env()
    else:
        command = [binary, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"]
        env = clean_env(XDG_DATA_HOME=str(directory / "data"), XDG_CONFIG_HOME=str(directory / "data"))
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=directory)
    try:
        _wait_port(port, process, log, name)
        yield Proxy(name, port, directory, process)
    finally:
        _stop(process)


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def proxy(request: pytest.FixtureRequest, issuer: TestIssuer, upstream: int, decision: EdgeProcess, pki: Pki,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """nginx, then Caddy, with TLS (client certificates optional) in front of the decision and the echo."""
    name = request.param
    need_proxy(name)
    directory = tmp_path_factory.mktemp(name)
    port = free_port()
    policy = directory / "policy.yaml"
    decision_port = int(decision.url.rsplit(":", 1)[1])
    policy.write_text(policy_text(issuer.issuer, listen=port, decision=decision_port, upstream=upstream, pki=pki))
    with running_proxy(name, policy, directory / "out", port) as running:
        yield running


# -- a client that sends exactly the bytes it is given ------------------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def upstream_headers(self) -> dict[str, list[str]]:
        """The headers the echo upstream received, by lower-case name."""
        seen: dict[str, list[str]] = {}
        for name, value in self.json()["headers"]:
            seen.setdefault(name.lower(), []).append(value)
        return seen


def tls_context(pki: Pki, *, cert: str | None = None, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.path("server-ca.pem"))
    if version is not None:
        context.minimum_version = version
        context.maximum_version = version
        if version < ssl.TLSVersion.TLSv1_2:
            # The client must be willing to speak the old protocol, so that the server refuses it.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if cert is not None:
        context.load_cert_chain(pki.path(f"{cert}.pem"), pki.path(f"{cert}-key.pem"))
    return context


def send(proxy: Proxy, pki: Pki, target: bytes | str, *, method: str = "GET", token: str | None = None,
         headers: dict[str, str] | None = None, body: bytes = b"", cert: str | None = None,
         version: ssl.TLSVersion | None = None, chunked: bool = False) -> Reply:
    """One HTTP/1.1 request over TLS with `target` sent byte for byte (no client-side normalising)."""
    raw_target = target.encode("latin-1") if isinstance(target, str) else target
    lines = [f"{method} ".encode() + raw_target + b" HTTP/1.1", f"Host: 127.0.0.1:{proxy.port}".encode(),
             b"Connection: close", b"User-Agent: edge-test"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}".encode())
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}".encode())
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        body = f"{len(body):x}".encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    elif body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}".encode())
    context = tls_context(pki, cert=cert, version=version)
    with socket.create_connection(("127.0.0.1", proxy.port), 30) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return Reply(response.status, response.headers, response.read())


def read_token(issuer: TestIssuer, **claims: Any) -> str:
    claims.setdefault("scope", "notes:read")
    return issuer.mint(**claims)


# -- who may pass ----------------------------------------------------------------------------------


def test_no_token_is_401_with_the_challenge(proxy: Proxy, pki: Pki) -> None:
    """Without credentials the client gets 401, RFC 6750's bare challenge (once) and a JSON body."""
    reply = send(proxy, pki, "/notes")

    assert reply.status == 401
    assert reply.headers.get_all("WWW-Authenticate") == [f'Bearer realm="{AUDIENCE}"']
    assert "Authentication required" in reply.json()["error_description"]
    assert reply.header("Cache-Control") == "no-store"


def test_a_token_without_the_scope_is_403_insufficient_scope(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """A token lacking the route's scope is refused 403 insufficient_scope with the scope named."""
    reply = send(proxy, pki, "/notes", token=read_token(issuer, scope="notes:write"))

    assert reply.status == 403
    assert reply.json()["error"] == "insufficient_scope"
    challenge = reply.header("WWW-Authenticate") or ""
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="notes:read"' in challenge


def test_the_right_token_reaches_the_upstream_with_its_identity(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """A token with the scope passes: the upstream sees the decision's identity headers and the token."""
    token = read_token(issuer, sub="alice")
    reply = send(proxy, pki, "/notes?page=2", token=token)

    assert reply.status == 200
    echo = reply.json()
    seen = reply.upstream_headers()
    assert (echo["method"], echo["raw_path"], echo["query"]) == ("GET", "/notes", "page=2")
    assert seen["x-bastion-sub"] == ["alice"]
    assert seen["x-bastion-client-id"] == ["web-client"]
    assert seen["x-bastion-scope"] == ["notes:read"]
    assert seen["authorization"] == [f"Bearer {token}"]
    assert len(seen["x-request-id"]) == 1
    assert seen["x-request-id"][0]
    assert reply.header("Strict-Transport-Security") == "max-age=63072000"


@pytest.mark.parametrize(("method", "target", "status", "error"), [
    pytest.param("GET", "/elsewhere", 404, "not_found", id="unlisted-path"),
    pytest.param("GET", "/notes/1/2", 404, "not_found", id="deeper-than-the-template"),
    pytest.param("DELETE", "/notes", 405, "method_not_allowed", id="unlisted-method"),
    pytest.param("GET", "/public/..%2fadmin", 400, "invalid_request", id="ambiguous-path"),
    pytest.param("GET", "/notes?q=" + "a" * 3000, 414, "uri_too_long", id="query-too-long"),
])
def test_what_no_route_allows_is_refused(proxy: Proxy, pki: Pki, issuer: TestIssuer, method: str, target: str,
                                         status: int, error: str) -> None:
    """Deny by default and the input checks reach the client with their real status: an unlisted path
    404, an unlisted method 405 with Allow, an ambiguous path 400, a long query 414."""
    reply = send(proxy, pki, target, method=method, token=read_token(issuer))

    assert (reply.status, reply.json()["error"]) == (status, error)
    if status == 405:
        assert {m.strip() for m in (reply.header("Allow") or "").split(",")} == {"GET", "POST"}


def test_an_exhausted_quota_is_429_with_retry_after(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """Two requests a minute per sub: the third is 429 rate_limited with Retry-After and RateLimit headers
    (through nginx too, whose auth_request passes on only 401 and 403)."""
    token = read_token(issuer, sub=f"quota-{proxy.name}")
    first, second = (send(proxy, pki, "/limited", token=token) for _ in range(2))
    third = send(proxy, pki, "/limited", token=token)

    assert (first.status, second.status) == (200, 200)
    assert first.upstream_headers()["ratelimit-limit"] == ["2"]
    assert third.status == 429
    assert third.json()["error"] == "rate_limited"
    assert int(third.header("Retry-After") or "0") > 0
    assert third.header("RateLimit-Remaining") == "0"


def test_a_body_larger_than_the_route_allows_is_413(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """/notes takes at most 1k: a 2k body is refused 413 before the upstream reads it."""
    reply = send(proxy, pki, "/notes", method="POST", token=read_token(issuer), body=b"x" * 2048,
                 headers={"Content-Type": "application/json"})

    assert (reply.status, reply.json()["error"]) == (413, "payload_too_large")


def test_a_chunked_body_within_the_limit_reaches_the_upstream_whole(proxy: Proxy, pki: Pki,
                                                                    issuer: TestIssuer) -> None:
    """The allowlist drops the client's framing headers, not the body: a chunked JSON body arrives whole."""
    reply = send(proxy, pki, "/notes", method="POST", token=read_token(issuer), body=b'{"n": "' + b"x" * 500 + b'"}',
                 chunked=True, headers={"Content-Type": "application/json"})

    assert reply.status == 200
    assert (reply.json()["method"], reply.json()["body_length"]) == ("POST", 509)


def test_a_chunked_body_larger_than_the_route_allows_never_reaches_the_upstream(proxy: Proxy, pki: Pki,
                                                                              issuer: TestIssuer) -> None:
    """Without a declared length the decision cannot see the size: the proxy's own per-route limit
    stops the body (413), and the upstream never answers for it."""
    chunk = b"x" * 2048
    reply = send(proxy, pki, "/notes", method="POST", token=read_token(issuer), body=chunk, chunked=True,
                 headers={"Content-Type": "application/json"})

    assert reply.status == 413
    assert reply.json()["error"] == "payload_too_large"


def test_a_content_type_the_route_does_not_take_is_415(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """/notes takes JSON only: a form body is refused 415 unsupported_media_type."""
    reply = send(proxy, pki, "/notes", method="POST", token=read_token(issuer), body=b"a=1",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert (reply.status, reply.json()["error"]) == (415, "unsupported_media_type")


# -- what reaches the upstream -------------------------------------------------------------------


def test_spoofed_identity_and_forwarding_headers_never_reach_the_upstream(proxy: Proxy, pki: Pki,
                                                                         issuer: TestIssuer) -> None:
    """Identity headers, X-Forwarded-* and a client certificate header sent by the client are dropped:
    the upstream sees only the decision's values and the proxy's own view of the peer."""
    spoofed = {
        "X-Bastion-Sub": "mallory", "X-Bastion-Scope": "admin", "X-Bastion-Roles": "admin",
        "X-Bastion-Cert-Thumbprint": "forged", "X-Bastion-Api-Key-Id": "forged", "X-Request-Id": "forged",
        "X-Forwarded-For": "203.0.113.66", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher",
        "X-Client-Cert": "-----BEGIN%20CERTIFICATE-----%0Aforged%0A-----END%20CERTIFICATE-----",
    }
    reply = send(proxy, pki, "/notes", token=read_token(issuer, sub="alice"), headers=spoofed)

    assert reply.status == 200
    seen = reply.upstream_headers()
    assert seen["x-bastion-sub"] == ["alice"]
    assert seen["x-bastion-scope"] == ["notes:read"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["https"]
    assert "evil.example" not in seen["x-forwarded-host"][0]
    assert seen["x-request-id"] != ["forged"]
    for name in ("x-bastion-roles", "x-bastion-cert-thumbprint", "x-bastion-api-key-id", "x-client-cert"):
        assert name not in seen, name


def test_a_public_route_gets_no_identity_even_when_the_client_sends_one(proxy: Proxy, pki: Pki) -> None:
    """On a public route nobody is authenticated: a client's X-Bastion-Sub and Authorization stay out."""
    reply = send(proxy, pki, "/public/page", headers={"X-Bastion-Sub": "mallory", "Authorization": "Bearer x"})

    assert reply.status == 200
    seen = reply.upstream_headers()
    assert "x-bastion-sub" not in seen
    assert "authorization" not in seen


def test_only_allowlisted_headers_reach_the_upstream(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """Headers outside the policy's allowlist never reach the upstream; listed ones arrive unchanged
    (a value that looks like a proxy placeholder is not expanded)."""
    reply = send(proxy, pki, "/notes", token=read_token(issuer), headers={
        "X-Internal-Debug": "1", "Cookie": "session=stolen", "X-Original-URL": "/admin",
        "X-HTTP-Method-Override": "DELETE", "Accept-Language": "fr", "Accept": "{env.HOME}",
    })

    assert reply.status == 200
    seen = reply.upstream_headers()
    assert set(seen) <= UPSTREAM_HEADERS, set(seen) - UPSTREAM_HEADERS
    assert seen["accept-language"] == ["fr"]
    assert seen["accept"] == ["{env.HOME}"]


def test_an_api_key_reaches_the_upstream_only_on_an_api_key_route(proxy: Proxy, pki: Pki,
                                                                   api_key: tuple[str, str]) -> None:
    """On an `api_key: true` route the key passes (the upstream may check it too) with its id from the
    decision; on a token route X-API-Key is not in the allowlist and never reaches the upstream."""
    key, key_id = api_key
    allowed = send(proxy, pki, "/keys", headers={"X-API-Key": key})
    elsewhere = send(proxy, pki, "/public/page", headers={"X-API-Key": key})

    assert allowed.status == 200
    assert allowed.upstream_headers()["x-api-key"] == [key]
    assert allowed.upstream_headers()["x-bastion-api-key-id"] == [key_id]
    assert "x-api-key" not in elsewhere.upstream_headers()


@pytest.mark.parametrize("target", ["/notes", "/elsewhere"])
def test_responses_do_not_name_the_stack(proxy: Proxy, pki: Pki, issuer: TestIssuer, target: str) -> None:
    """No X-Powered-By and no upstream Server reach the client; nginx says `nginx` without a version
    (stock nginx cannot drop its own Server header), Caddy says nothing."""
    reply = send(proxy, pki, target, token=read_token(issuer))

    assert reply.header("X-Powered-By") is None
    assert reply.header("Server") in ({"nginx": "nginx", "caddy": None}[proxy.name],)
    assert "Echo" not in str(reply.headers)


# -- one path for the decision and the upstream --------------------------------------------------

CONFUSIONS = [
    "/public/..%2fadmin", "/public/..%2Fadmin", "/public/%2e%2e/admin", "/public/%2E%2E%2Fadmin",
    "/public/../admin", "/public/./page", "/public/page/..", "/public//page", "//public/page",
    "/public/page%2fx", "/public/page%5cx", "/public/page\\x", "/public/..\\admin", "/public/%00",
    "/public/page%00.html", "/public/page;x", "/admin;x", "/public/page%3bx", "/public/%252e%252e%252fadmin",
    "/ADMIN", "/Admin", "/PUBLIC/page", "/admin.", "/admin%2e", "/admin%20", "/public/page.", "/public/page%2e",
    "/public/%c3%a9", "/public/\xc3\xa9", "/public/%ef%bc%8e%ef%bc%8e%ef%bc%8fadmin", "/%61dmin",
    "/public/%", "/public/%zz", "/public/page?x=..%2f..%2fadmin", "/public/page#x", "/public/page\x01",
]


@pytest.mark.parametrize("target", CONFUSIONS)
def test_the_decision_and_the_upstream_see_the_same_path(proxy: Proxy, pki: Pki, issuer: TestIssuer,
                                                         decision: EdgeProcess, target: str) -> None:
    """Each tricky request is refused at the edge (never with a 5xx), or the upstream receives the very
    URI the decision allowed and decodes it to the decision's path (a public page: the token has no admin)."""
    try:
        reply = send(proxy, pki, target, token=read_token(issuer))
    except (ConnectionError, http.client.HTTPException):
        return  # the proxy dropped the connection: refused, nothing reached the upstream
    assert reply.status < 500, (reply.status, reply.body)
    if reply.status != 200:
        return
    echo = reply.json()
    asked = decision_saw(decision, reply.upstream_headers()["x-request-id"][0])
    # The upstream got the very URI the decision was asked about, so its reading is the decision's.
    assert asked["uri"] == echo["raw_path"] + (f"?{echo['query']}" if echo["query"] else "")
    allowed = accept(asked["uri"].encode("latin-1"), 2048).path
    assert echo["path"] == allowed
    assert allowed.startswith("/public/")
    assert "/" not in allowed[len("/public/"):]
    assert ".." not in allowed
    assert "\\" not in allowed


def decision_saw(decision: EdgeProcess, request_id: str) -> dict[str, Any]:
    """The decision's audit line for `request_id` (what it was asked about and answered)."""
    for line in decision.log.read_text("utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "edge.decision" and entry.get("request_id") == request_id:
                return dict(entry)
    raise AssertionError(f"no decision logged for request {request_id}")


# -- TLS and client certificates ------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"], ids=["tls1.0", "tls1.1"])
def test_tls_before_1_2_is_refused(proxy: Proxy, pki: Pki, version: str) -> None:
    """A client offering only TLS 1.0 or 1.1 gets no connection."""
    with pytest.raises(ssl.SSLError) as refused:
        send(proxy, pki, "/public/page", version=getattr(ssl.TLSVersion, version))

    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)  # the server refused, not our own client


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_tls_1_2_and_1_3_are_accepted(proxy: Proxy, pki: Pki, version: ssl.TLSVersion) -> None:
    """TLS 1.2 and 1.3 clients are served."""
    assert send(proxy, pki, "/public/page", version=version).status == 200


def test_a_certificate_bound_route_refuses_a_client_without_a_certificate(proxy: Proxy, pki: Pki,
                                                                           issuer: TestIssuer) -> None:
    """`client_cert: required` on the route: no certificate, 403 forbidden."""
    reply = send(proxy, pki, "/bound", token=read_token(issuer))

    assert (reply.status, reply.json()["error"]) == (403, "forbidden")


def test_a_certificate_from_another_ca_is_refused(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """A client certificate the client CA did not sign never passes: the handshake fails or 403."""
    try:
        reply = send(proxy, pki, "/bound", token=read_token(issuer), cert="rogue")
    except (ssl.SSLError, ConnectionError):
        return
    assert (reply.status, reply.json()["error"]) == (403, "forbidden")


def test_the_client_certificate_thumbprint_reaches_the_upstream(proxy: Proxy, pki: Pki, issuer: TestIssuer) -> None:
    """With a certificate from the client CA the bound route passes, and the upstream gets its RFC 8705
    SHA-256 thumbprint from the decision."""
    reply = send(proxy, pki, "/bound", token=read_token(issuer), cert="client")

    assert reply.status == 200
    assert reply.upstream_headers()["x-bastion-cert-thumbprint"] == [pki.client_thumbprint]


@pytest.mark.parametrize("name", ["nginx", "caddy"])
def test_certificates_required_everywhere_and_a_trusted_proxys_forwarding(
        name: str, issuer: TestIssuer, upstream: int, decision: EdgeProcess, pki: Pki, tmp_path: Path) -> None:
    """`tls.client_cert: required` refuses every connection without a certificate from the client CA, and
    X-Forwarded-For from a peer listed in trusted_proxies (here loopback) is kept rather than overwritten."""
    port = free_port()
    policy = tmp_path / "policy.yaml"
    decision_port = int(decision.url.rsplit(":", 1)[1])
    text = policy_text(issuer.issuer, listen=port, decision=decision_port, upstream=upstream, pki=pki)
    policy.write_text(text.replace("client_cert: optional", "client_cert: required")
                      + "trusted_proxies: [127.0.0.1]\n")
    with running_proxy(name, policy, tmp_path / "out", port) as running:
        try:
            anonymous: Reply | None = send(running, pki, "/public/page")
        except (ssl.SSLError, ConnectionError):
            anonymous = None
        forwarded = send(running, pki, "/public/page", cert="client",
                         headers={"X-Forwarded-For": "198.51.100.4"})

    if anonymous is not None:  # nginx answers the failed check; Caddy ends the handshake
        assert (anonymous.status, anonymous.json()["error"]) == (403, "forbidden")
    assert forwarded.status == 200
    assert forwarded.upstream_headers()["x-forwarded-for"][0].startswith("198.51.100.4")


# -- failing closed ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nginx", "caddy"])
def test_the_decision_service_down_is_503(name: str, issuer: TestIssuer, upstream: int, pki: Pki,
                                          tmp_path: Path) -> None:
    """With nothing answering at the policy's decision address the proxy fails closed: 503, JSON."""
    port = free_port()
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(issuer.issuer, listen=port, decision=free_port(), upstream=upstream, pki=pki))
    with running_proxy(name, policy, tmp_path / "out", port) as running:
        reply = send(running, pki, "/public/page")

    assert (reply.status, reply.json()["error"]) == (503, "temporarily_unavailable")


# -- rendering -----------------------------------------------------------------------------------


def test_what_the_proxy_writes_stays_in_its_directory(proxy: Proxy, pki: Pki) -> None:
    """Run from the rendered directory, the proxy keeps its pid, logs, temporary files and storage there."""
    assert send(proxy, pki, "/public/page").status == 200
    expected = {
        "nginx": ["nginx.pid", "logs/error.log", "logs/access.log", "tmp/client_body", "tmp/proxy"],
        "caddy": ["logs/access.log", "logs/caddy.log", "data/caddy/autosave.json"],
    }[proxy.name]
    for name in expected:
        assert (proxy.directory / name).exists(), name


@pytest.mark.parametrize("tls", ["mtls-optional", "mtls-required", "plain", "https-upstream"])
@pytest.mark.parametrize("name", ["nginx", "caddy"])
def test_the_rendered_configuration_passes_the_proxys_own_check(name: str, tls: str, pki: Pki,
                                                                tmp_path: Path) -> None:
    """`nginx -t` and `caddy validate` accept what `bastion edge render` writes, with and without TLS,
    client certificates optional or required for every connection, and trusted proxies."""
    binary = need_proxy(name)
    policy = tmp_path / "policy.yaml"
    text = policy_text("https://issuer.test", listen=8443, decision=8600, upstream=9000,
                       pki=None if tls == "plain" else pki) + "trusted_proxies: [10.0.0.0/8, 192.0.2.7]\n"
    text = text.replace("client_cert: optional", "client_cert: required") if tls == "mtls-required" else text
    text = text.replace("http://127.0.0.1:9000", "https://localhost:9443") if tls == "https-upstream" else text
    policy.write_text(text.replace(", client_cert: required}", "}") if tls == "plain" else text)
    out = tmp_path / "out"
    render(name, policy, out)
    if name == "nginx":
        command = [binary, "-t", "-p", str(out), "-c", "nginx.conf", "-e", "logs/error.log"]
        env = clean_env()
    else:
        command = [binary, "validate", "--config", str(out / "Caddyfile"), "--adapter", "caddyfile"]
        env = clean_env(XDG_DATA_HOME=str(out / "data"), XDG_CONFIG_HOME=str(out / "data"))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    written = {p.name for p in out.rglob("*") if p.is_file()}
    assert {"nginx": {"nginx.conf", "upstream-headers.conf"}, "caddy": {"Caddyfile"}}[name] <= written


@pytest.mark.parametrize(("change", "message", "fix"), [
    pytest.param(("http://127.0.0.1:9000", "http://127.0.0.1:9000/api"),
                 "upstream: 'http://127.0.0.1:9000/api' has a path", "write only scheme://host:port",
                 id="upstream-path"),
    pytest.param(("http://127.0.0.1:9000", "http://127.0.0.1:9000/?x=1"),
                 "has a path, query or user part", "write only scheme://host:port", id="upstream-query"),
    pytest.param(("routes:", "headers: {allow: [accept, x_tenant]}\nroutes:"),
                 "headers.allow: 'x_tenant' is not a header name", "(letters, digits and -)", id="underscore-header"),
    pytest.param(("routes:", "decision: 'bad host:8600'\nroutes:"),
                 "decision: host 'bad host' has characters", "write a host name or an IP address", id="decision-host"),
])
def test_render_refuses_what_it_cannot_write_safely(tmp_path: Path, change: tuple[str, str], message: str,
                                                    fix: str) -> None:
    """A value the proxy cannot carry as given is refused, naming the field and the fix, and nothing is
    written (exit 2)."""
    policy = tmp_path / "policy.yaml"
    text = policy_text("https://issuer.test", listen=8443, decision=8600, upstream=9000, pki=None)
    text = text.replace(", client_cert: required", "").replace(*change)
    if "decision: 'bad" in text:
        text = text.replace("decision: 127.0.0.1:8600\n", "")
    policy.write_text(text)
    result = bastion("edge", "render", "nginx", "--policy", str(policy), "-o", str(tmp_path / "out"))

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {policy}: ")
    assert message in result.stderr
    assert fix in result.stderr
    assert not (tmp_path / "out").exists()
