"""The edge policy file: a good one read into its dataclasses, each kind of mistake named with file:line."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bastion.edge import Body, PolicyError, Quota, load
from bastion.edge.policy import DEFAULT_HEADERS
from tests.cli._run import invoke
from tests.guard._issuer import free_socket

GOOD = """\
listen: 127.0.0.1:8443
tls:
  cert: cert.pem
  key: key.pem
  client_ca: ca.pem
  client_cert: optional
decision: 127.0.0.1:8600
issuer: https://auth.example.com/
audience: https://api.example.com
upstream: http://127.0.0.1:9000
redis: redis://127.0.0.1:6379/0
client_id: edge
client_secret: env:EDGE_TEST_SECRET
api_keys: {file: apikeys.json}
headers:
  allow: [Accept, content-type, x-trace]
trusted_proxies: [10.0.0.0/24, 127.0.0.1]
max_query: 1024
max_body: 1m
decision_cache_seconds: 5
routes:
  - path: /notes
    methods: [GET, post]
    scopes: [notes:read]
    roles: [editor]
    api_key: true
    client_cert: required
    body: {max: 64k, types: [application/json]}
    quotas:
      - {per: client_id, limit: 10000, window: day}
      - {per: sub, limit: 100, window: minute}
  - path: "/notes/{id}"
    methods: [GET]
  - {path: /health, methods: [GET], public: true, quotas: [{per: address, limit: 5, window: second}]}
"""

MINIMAL = """\
issuer: https://auth.example.com
audience: https://api.example.com
upstream: http://127.0.0.1:9000
routes:
  - {path: /notes, methods: [GET], scopes: [notes:read]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_a_full_policy_is_read_with_every_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every field of the contract is read, paths resolved against the policy's directory."""
    monkeypatch.setenv("EDGE_TEST_SECRET", "s3cret")
    policy = load(_write(tmp_path, GOOD))

    assert policy.listen == ("127.0.0.1", 8443)
    assert policy.decision == ("127.0.0.1", 8600)
    assert policy.tls is not None
    assert policy.tls.cert == tmp_path.resolve() / "cert.pem"
    assert policy.tls.client_ca == tmp_path.resolve() / "ca.pem"
    assert policy.tls.client_cert == "optional"
    assert policy.issuer == "https://auth.example.com"
    assert policy.audience == "https://api.example.com"
    assert policy.redis == "redis://127.0.0.1:6379/0"
    assert policy.client_id == "edge"
    assert policy.client_secret is not None
    assert policy.client_secret.reveal() == "s3cret"
    assert "s3cret" not in repr(policy)
    assert policy.api_keys is not None
    assert policy.api_keys.file == tmp_path.resolve() / "apikeys.json"
    assert policy.headers_allow == ("accept", "content-type", "x-trace")
    assert policy.trusted_proxies == (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("127.0.0.1"))
    assert (policy.max_query, policy.max_body, policy.decision_cache_seconds) == (1024, 1024 * 1024, 5)
    notes, item, health = policy.routes
    assert notes.methods == ("GET", "POST")
    assert (notes.scopes, notes.roles, notes.api_key, notes.client_cert) == (
        ("notes:read",), ("editor",), True, "required")
    assert notes.body == Body(max=64 * 1024, types=("application/json",))
    assert notes.quotas == (Quota("client_id", 10000, "day"), Quota("sub", 100, "minute"))
    assert notes.quotas[0].seconds == 86400
    assert notes.line == 22
    assert item.path == "/notes/{id}"
    assert item.body == Body(max=1024 * 1024)
    assert health.public
    assert health.quotas == (Quota("address", 5, "second"),)


def test_a_minimal_policy_takes_the_defaults(tmp_path: Path) -> None:
    """Omitted fields take the contract's defaults."""
    policy = load(_write(tmp_path, MINIMAL))

    assert policy.listen == ("127.0.0.1", 8443)
    assert policy.decision == ("127.0.0.1", 8600)
    assert policy.tls is None
    assert policy.redis is None
    assert policy.api_keys is None
    assert policy.client_id is None
    assert policy.client_secret is None
    assert policy.headers_allow == DEFAULT_HEADERS
    assert policy.trusted_proxies == ()
    assert (policy.max_query, policy.max_body, policy.decision_cache_seconds) == (2048, 1024 * 1024, 0)
    assert policy.routes[0].public is False
    assert policy.routes[0].quotas == ()


def _edit(old: str, new: str) -> str:
    assert old in MINIMAL, old
    return MINIMAL.replace(old, new)


ROUTE = "  - {path: /notes, methods: [GET], scopes: [notes:read]}\n"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("routes: [\n", "policy.yaml:2: policy: YAML syntax error: ", id="yaml-syntax"),
    pytest.param("", "policy.yaml:1: policy: the file is empty", id="empty"),
    pytest.param("- a\n", "policy.yaml:1: policy: must be a mapping", id="not-a-mapping"),
    pytest.param(_edit("audience: https://api.example.com\n", ""),
                 "policy.yaml:1: audience: is required (fix: add `audience:`", id="missing-audience"),
    pytest.param(MINIMAL + "upstreams: x\n",
                 "policy.yaml:6: upstreams: unknown key (fix: did you mean `upstream`?)", id="unknown-key"),
    pytest.param(MINIMAL + "issuer: https://other\n",
                 "policy.yaml:6: issuer: duplicate key", id="duplicate-key"),
    pytest.param(_edit("https://auth.example.com", "ftp://auth"),
                 "policy.yaml:1: issuer: must be a https:// or http:// URL, not 'ftp://auth'", id="issuer-scheme"),
    pytest.param(MINIMAL + "listen: 0.0.0.0:8443\n",
                 "policy.yaml:6: listen: plain HTTP on 0.0.0.0, which is not a loopback address "
                 "(fix: add a tls block with cert and key, or listen on 127.0.0.1)", id="plain-http-public"),
    pytest.param(MINIMAL + "decision: 127.0.0.1\n",
                 "policy.yaml:6: decision: must be host:port, not '127.0.0.1'", id="address-without-port"),
    pytest.param(MINIMAL + "tls: {cert: c.pem}\n",
                 "policy.yaml:6: tls.key: is required", id="tls-without-key"),
    pytest.param(MINIMAL + "tls: {cert: c.pem, key: k.pem, client_cert: required}\n",
                 "policy.yaml:6: tls.client_cert: needs tls.client_ca", id="client-cert-without-ca"),
    pytest.param(MINIMAL + "client_id: edge\n",
                 "policy.yaml:6: client_secret: is required with the other one", id="id-without-secret"),
    pytest.param(MINIMAL + "client_id: edge\nclient_secret: env:EDGE_TEST_UNSET_VARIABLE\n",
                 "policy.yaml:7: client_secret: environment variable EDGE_TEST_UNSET_VARIABLE is not set",
                 id="secret-env-unset"),
    pytest.param(MINIMAL + "api_keys: {file: a.json, database: sqlite:///x}\n",
                 "policy.yaml:6: api_keys: must name exactly one of database or file", id="api-keys-both"),
    pytest.param(MINIMAL + "headers: {allow: [accept, 'bad header']}\n",
                 "policy.yaml:6: headers.allow[1]: 'bad header' is not a header name", id="bad-header"),
    pytest.param(MINIMAL + "trusted_proxies: [10.0.0.1/24]\n",
                 "policy.yaml:6: trusted_proxies[0]: '10.0.0.1/24' is not an IP address or network",
                 id="bad-network"),
    pytest.param(MINIMAL + "max_query: -1\n",
                 "policy.yaml:6: max_query: must be a whole number from 0 to 65536, not -1", id="max-query-range"),
    pytest.param(MINIMAL + "max_body: 1g\n",
                 "policy.yaml:6: max_body: must be a size in bytes with an optional k or m suffix, not '1g'",
                 id="bad-size"),
    pytest.param(MINIMAL + "decision_cache_seconds: yes\n",
                 "policy.yaml:6: decision_cache_seconds: must be a whole number from 0 to 300, not True",
                 id="cache-not-number"),
    pytest.param(_edit(ROUTE, "  []\n"), "policy.yaml:5: routes: is empty: every request would be refused",
                 id="no-routes"),
    pytest.param(_edit(ROUTE, "  - {path: /notes}\n"),
                 "policy.yaml:5: routes[0].methods: is required (fix: add e.g. `methods: [GET]`)",
                 id="route-without-methods"),
    pytest.param(_edit("methods: [GET]", "methods: [GET, FETCH]"),
                 "policy.yaml:5: routes[0].methods[1]: unknown method 'FETCH'", id="unknown-method"),
    pytest.param(_edit("methods: [GET]", "methods: GET"),
                 "policy.yaml:5: routes[0].methods: must be a list", id="methods-not-a-list"),
    pytest.param(_edit("path: /notes", "path: notes"),
                 "policy.yaml:5: routes[0].path: 'notes' is not a plain absolute path", id="relative-path"),
    pytest.param(_edit("path: /notes", "path: /a/../notes"),
                 "policy.yaml:5: routes[0].path: '/a/../notes' is not a plain absolute path", id="dot-segment"),
    pytest.param(_edit("path: /notes", "path: /a%2fb"),
                 "policy.yaml:5: routes[0].path: '/a%2fb' is not a plain absolute path", id="encoded-path"),
    pytest.param(_edit("path: /notes", "path: '/n/{id}/{id}'"),
                 "policy.yaml:5: routes[0].path: a {name} appears twice", id="duplicate-template-name"),
    pytest.param(_edit("scopes: [notes:read]", "scopes: [notes:read], publik: true"),
                 "policy.yaml:5: routes[0].publik: unknown key (fix: did you mean `public`?)",
                 id="route-unknown-key"),
    pytest.param(_edit("scopes: [notes:read]", "scopes: ['notes read']"),
                 "policy.yaml:5: routes[0].scopes[0]: 'notes read' is not a scope", id="scope-with-space"),
    pytest.param(_edit("scopes: [notes:read]", "scopes: [notes:read], public: true"),
                 "policy.yaml:5: routes[0].scopes: a public route needs no credentials", id="public-with-scopes"),
    pytest.param(_edit("scopes: [notes:read]", "api_key: true"),
                 "policy.yaml:5: routes[0].api_key: no api_keys source is configured", id="api-key-without-source"),
    pytest.param(_edit("scopes: [notes:read]", "client_cert: required"),
                 "policy.yaml:5: routes[0].client_cert: required, but tls.client_ca is not set",
                 id="client-cert-without-mtls"),
    pytest.param(_edit("scopes: [notes:read]", "body: {max: 64x}"),
                 "policy.yaml:5: routes[0].body.max: must be a size in bytes", id="body-size"),
    pytest.param(_edit("scopes: [notes:read]", "body: {types: [JSON]}"),
                 "policy.yaml:5: routes[0].body.types[0]: 'JSON' is not a lowercase media type", id="body-type"),
    pytest.param(_edit("scopes: [notes:read]", "quotas: [{per: user, limit: 5, window: day}]"),
                 "policy.yaml:5: routes[0].quotas[0].per: must be one of client_id, sub, api_key, address, "
                 "not 'user'", id="quota-per"),
    pytest.param(_edit("scopes: [notes:read]", "quotas: [{per: sub, limit: 5, window: week}]"),
                 "policy.yaml:5: routes[0].quotas[0].window: must be one of second, minute, hour, day, "
                 "not 'week'", id="quota-window"),
    pytest.param(_edit("scopes: [notes:read]", "quotas: [{per: sub, limit: 0, window: day}]"),
                 "policy.yaml:5: routes[0].quotas[0].limit: must be a whole number from 1", id="quota-limit"),
    pytest.param(_edit("scopes: [notes:read]", "quotas: [{per: sub, window: day}]"),
                 "policy.yaml:5: routes[0].quotas[0].limit: is required", id="quota-missing-limit"),
    pytest.param(_edit("scopes: [notes:read]", "quotas: [{per: api_key, limit: 5, window: day}]"),
                 "policy.yaml:5: routes[0].quotas[0].per: api_key is never known on this route",
                 id="quota-per-api-key-without-keys"),
    pytest.param(_edit("audience: https://api.example.com", "audience: &a https://api.example.com")
                 + "client_id: *a\nclient_secret: s\n",
                 "policy.yaml:6: policy: YAML aliases (*name) are not supported", id="alias"),
])
def test_each_mistake_is_named_with_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    """A wrong policy is refused with file:line, the field, the problem and the fix."""
    with pytest.raises(PolicyError) as info:
        load(_write(tmp_path, text))

    message = str(info.value.problems[0])
    assert message.startswith(expected.replace("policy.yaml", str(tmp_path / "policy.yaml"))), message


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    """A missing policy file is a PolicyError naming it, not an OSError."""
    with pytest.raises(PolicyError, match="cannot read the file: No such file or directory"):
        load(tmp_path / "absent.yaml")


def test_the_command_prints_the_problem_and_exits_2(tmp_path: Path) -> None:
    """`bastion edge serve` with a wrong policy prints `error: FILE:LINE: ...` and exits 2."""
    path = _write(tmp_path, _edit("methods: [GET]", "methods: [FETCH]"))
    result = invoke("edge", "serve", "--policy", str(path))

    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {path}:5: routes[0].methods[0]: unknown method 'FETCH' "
                                     "(fix: use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)")


def test_a_busy_port_is_refused_before_serving(tmp_path: Path) -> None:
    """`bastion edge serve` on a port another process holds exits 2 naming the address and the fix."""
    path = _write(tmp_path, MINIMAL)
    with free_socket() as busy:
        busy.listen(1)
        port = busy.getsockname()[1]
        result = invoke("edge", "serve", "--policy", str(path), "--port", str(port))

    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: decision (command line): 127.0.0.1:{port} is already in use by another "
                                     "process. Fix: choose a free --port, or an address of this machine with --host")
