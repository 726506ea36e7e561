"""`bastion edge init`: a policy drafted from an OpenAPI document, loadable by the edge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.demo import create_app
from bastion.edge.policy import Policy, load
from bastion.guard import IssuerConfig
from bastion.server.admin_api import ADMIN_SCOPE, OPERATIONS
from tests._live import LiveServer
from tests.cli._run import bastion

ISSUER = "http://127.0.0.1:9"


def _demo_document() -> dict[str, Any]:
    app = create_app([IssuerConfig(ISSUER + "/.well-known/openid-configuration", "https://api.test")], seed=False)
    return app.openapi()


def _init(tmp_path: Path, source: str, *extra: str) -> Policy:
    out = tmp_path / "policy.yaml"
    result = bastion("edge", "init", "--openapi", source, "-o", str(out), "--issuer", ISSUER,
                     "--audience", "https://api.test", "--upstream", "http://127.0.0.1:9000", *extra)
    assert result.returncode == 0, result.stderr
    return load(out)


def _routes(policy: Policy) -> list[tuple[str, tuple[str, ...], bool, tuple[str, ...], bool]]:
    return [(r.path, r.methods, r.public, r.scopes, r.api_key) for r in policy.routes]


def test_demo_document_from_a_file_becomes_the_policy_it_declares(tmp_path: Path) -> None:
    """The demo API's own document: /health public, /integrations/stats by API key, every other
    operation a token, methods grouped per path."""
    source = tmp_path / "demo.json"
    source.write_text(json.dumps(_demo_document()))
    policy = _init(tmp_path, str(source))
    assert policy.issuer == ISSUER
    assert policy.audience == "https://api.test"
    assert _routes(policy) == [
        ("/health", ("GET",), True, (), False),
        ("/me", ("GET",), False, (), False),
        ("/notes", ("GET", "POST"), False, (), False),
        ("/notes/{note_id}", ("GET", "DELETE", "PATCH"), False, (), False),
        ("/admin/notes", ("GET",), False, (), False),
        ("/admin/users/{subject}/notes", ("DELETE",), False, (), False),
        ("/integrations/stats", ("GET",), False, (), True),
    ]
    text = (tmp_path / "policy.yaml").read_text()
    assert "# GET /notes/{note_id}: read_note" in text  # each route says which operation it came from
    assert policy.api_keys is not None  # an api_key route names where keys are checked


def test_admin_document_from_a_live_server_gives_its_oauth2_scopes(live_server: LiveServer, tmp_path: Path) -> None:
    """The admin API's document fetched from a real `bastion serve`: every operation needs its OAuth 2 scopes."""
    policy = _init(tmp_path, live_server.url + "/admin/openapi.json")
    published = {op.path for op in OPERATIONS}
    assert {r.path for r in policy.routes} == published
    assert all(r.scopes == (ADMIN_SCOPE, "roles") and not r.public for r in policy.routes)
    assert sum(len(r.methods) for r in policy.routes) == len(OPERATIONS)


CRAFTED: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "2"},
    "servers": [{"url": "https://shop.example/api/v2"}],
    "security": [{"oauth": ["shop:read"]}],
    "components": {"securitySchemes": {
        "oauth": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/t", "scopes": {}}}},
        "oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://id.example/.well-known/openid-configuration"},
        "key": {"type": "apiKey", "in": "query", "name": "key"},
        "cert": {"type": "mutualTLS"},
        "alias": {"$ref": "#/components/securitySchemes/oidc"},
    }},
    "paths": {
        "/orders": {
            "get": {"operationId": "listOrders"},
            "post": {"operationId": "createOrder", "security": [{"oauth": ["shop:write"]}, {"alias": ["shop:admin"]}]},
            "trace": {"operationId": "echo"},
        },
        "/orders/{orderId}/items": {"get": {"security": [{"oauth": ["shop:read"], "cert": []}]}},
        "/catalog": {"get": {"security": [{}, {"oauth": ["shop:read"]}]}},
        "/status": {"get": {"security": []}, "head": {"security": []}},
        "/feeds": {"get": {"security": [{"key": []}]}},
    },
}


def test_requirements_map_to_routes(tmp_path: Path) -> None:
    """Global and per-operation security, OR alternatives (the stricter AND), optional auth as
    public, apiKey, mutualTLS, the server's path in front, TRACE left out."""
    source = tmp_path / "shop.yaml"
    source.write_text(yaml.safe_dump(CRAFTED, sort_keys=False))
    policy = _init(tmp_path, str(source))
    assert _routes(policy) == [
        ("/api/v2/orders", ("GET",), False, ("shop:read",), False),
        ("/api/v2/orders", ("POST",), False, ("shop:write", "shop:admin"), False),
        ("/api/v2/orders/{orderId}/items", ("GET",), False, ("shop:read",), False),
        ("/api/v2/catalog", ("GET",), True, (), False),
        ("/api/v2/status", ("GET", "HEAD"), True, (), False),
        ("/api/v2/feeds", ("GET",), False, (), True),
    ]
    assert [r.client_cert for r in policy.routes][2] == "required"
    assert policy.tls is not None
    assert policy.tls.client_ca is not None
    text = (tmp_path / "policy.yaml").read_text()
    assert "alternatives are OR in OpenAPI" in text
    assert "sends its key as query `key`; the edge reads X-API-Key" in text


def test_a_document_without_security_needs_a_token_everywhere(tmp_path: Path) -> None:
    """No `security` anywhere is deny by default: a token on every route, never an open edge."""
    source = tmp_path / "bare.json"
    source.write_text(json.dumps({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
                                  "paths": {"/things": {"get": {}, "delete": {}}}}))
    policy = _init(tmp_path, str(source))
    assert _routes(policy) == [("/things", ("GET", "DELETE"), False, (), False)]
    assert "a token is required (deny by default)" in (tmp_path / "policy.yaml").read_text()


def _bad(doc: Any) -> str:
    return doc if isinstance(doc, str) else json.dumps(doc)


_BASE = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}}
REFUSALS = [
    pytest.param(_BASE | {"paths": {"/a": {"get": {"security": [{"basic": []}]}}},
                          "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}}},
                 "GET /a: scheme `basic` is HTTP basic, which the edge cannot decide", id="http-basic"),
    pytest.param(_BASE | {"paths": {"/a": {"get": {"security": [{"nope": []}]}}}},
                 "GET /a: security scheme `nope` is not in components.securitySchemes", id="unknown-scheme"),
    pytest.param({"swagger": "2.0", "paths": {"/a": {}}}, "not an OpenAPI 3 document", id="swagger-2"),
    pytest.param(_BASE | {"paths": {}}, "the document has no `paths`", id="no-paths"),
    pytest.param("openapi: 3.0.0\nx: &a [1]\npaths: {/a: {get: {x: *a}}}\n", "uses a YAML alias", id="yaml-alias"),
    pytest.param("{not json", "not JSON or YAML", id="not-json"),
    pytest.param(_BASE | {"paths": {"/a": {"get": {"security": [{"o": ["has space"]}]}}},
                          "components": {"securitySchemes": {"o": {"type": "oauth2", "flows": {}}}}},
                 "routes[0].scopes", id="scope-not-a-scope-token"),
    pytest.param(_BASE | {"paths": {"/a/../b": {"get": {}}}}, "is not a plain absolute path", id="dot-segment-path"),
]


@pytest.mark.parametrize(("doc", "phrase"), REFUSALS)
def test_documents_the_edge_cannot_enforce_are_refused_naming_why(tmp_path: Path, doc: Any, phrase: str) -> None:
    """A document that cannot become a sound policy is exit 2 with the reason; no policy file is written."""
    source = tmp_path / "doc.json"
    source.write_text(_bad(doc))
    result = bastion("edge", "init", "--openapi", str(source), "-o", str(tmp_path / "policy.yaml"))
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    assert phrase in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "policy.yaml").exists()


def test_unreachable_sources_and_an_existing_output_are_refused(live_server: LiveServer, tmp_path: Path) -> None:
    """A missing file, a URL answering 404, and an existing policy without --force: exit 2,
    nothing overwritten; with --force it is replaced."""
    out = tmp_path / "policy.yaml"
    missing = bastion("edge", "init", "--openapi", str(tmp_path / "none.json"), "-o", str(out))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    gone = bastion("edge", "init", "--openapi", live_server.url + "/nothing.json", "-o", str(out))
    assert gone.returncode == 2
    assert "answered 404, not 200" in gone.stderr
    out.write_text("keep me")
    again = bastion("edge", "init", "--openapi", live_server.url + "/admin/openapi.json", "-o", str(out))
    assert again.returncode == 2
    assert "exists. Fix: pass --force" in again.stderr
    assert out.read_text() == "keep me"
    forced = bastion("edge", "init", "--openapi", live_server.url + "/admin/openapi.json", "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert load(out).routes
