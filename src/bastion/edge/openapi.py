"""An edge policy drafted from an OpenAPI 3 document's `security` requirements.

`bastion edge init --openapi URL|FILE` reads what the API already declares (OpenAPI 3.0/3.1
§4.8.10 Operation `security`, §4.8.30 Security Requirement, §4.8.27 Security Scheme) and writes
the policy the decision service enforces, commented so a reviewer sees where each route came
from. The mapping:

- an operation's `security` overrides the document's; an empty list, or an empty requirement
  `{}` among the alternatives, makes the operation anonymous (`public: true`);
- OAuth 2 and OpenID Connect schemes give the route's scopes. Alternatives are OR in OpenAPI
  but a route's scopes are AND: the draft asks for the union (the stricter reading) and says so;
- an `apiKey` scheme gives `api_key: true`; `mutualTLS` gives `client_cert: required`;
- HTTP bearer is a token without scopes; HTTP basic and digest cannot be decided at the edge
  and are refused, naming the operation;
- an operation with no requirement anywhere in the document needs a token (deny by default:
  a document that forgot `security` must not produce an open edge), and says so in a comment.

Path templates are kept as `{name}` segments, the first server's path is put in front (the
edge sees the URI the client sends), and methods with the same requirements share a route.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PLAIN = re.compile(r"^[A-Za-z0-9_./-]+$")


class OpenAPIError(Exception):
    """The document cannot be read or turned into a policy; the message says why and the fix."""


@dataclass
class DraftRoute:
    """One route of the draft: a path, its methods and what they need, with where it came from."""

    path: str
    methods: list[str]
    public: bool = False
    scopes: tuple[str, ...] = ()
    api_key: bool = False
    client_cert: bool = False
    notes: list[str] = field(default_factory=list)

    def key(self) -> tuple[object, ...]:
        return (self.path, self.public, self.scopes, self.api_key, self.client_cert)


# -- reading the document ------------------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """A YAML loader refusing aliases: a hostile document cannot expand into gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise OpenAPIError("the document uses a YAML alias (*name). Fix: write it out without anchors")
        return super().compose_node(parent, index)


def read_document(source: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """The OpenAPI document at `source` (an http(s) URL or a file), JSON or YAML."""
    if source.startswith(("http://", "https://")):
        text = _fetch(source, timeout)
    else:
        path = Path(source)
        if not path.is_file():
            raise OpenAPIError(f"{source}: no such file. Fix: pass the document's path or an http(s) URL")
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise OpenAPIError(f"{source}: larger than {MAX_DOCUMENT_BYTES} bytes")
        text = path.read_text("utf-8", errors="replace")
    return parse_document(text, source)


def _fetch(url: str, timeout: float) -> str:
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client, \
                client.stream("GET", url, headers={"accept": "application/json, application/yaml"}) as response:
            if response.status_code != 200:
                raise OpenAPIError(f"{url}: answered {response.status_code}, not 200. Fix: pass the document's URL")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise OpenAPIError(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise OpenAPIError(f"{url}: cannot be fetched ({type(exc).__name__}). Fix: check the URL "
                           "and that the server is up") from None
    return body.decode("utf-8", errors="replace")


def parse_document(text: str, source: str) -> dict[str, Any]:
    """Parse JSON or YAML text and check it is an OpenAPI 3 document with paths."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, _NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except (ValueError, yaml.YAMLError) as exc:
        raise OpenAPIError(f"{source}: not JSON or YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not str(data.get("openapi", "")).startswith("3."):
        raise OpenAPIError(f"{source}: not an OpenAPI 3 document (no `openapi: 3.x`). Fix: pass "
                           "the OpenAPI 3 document, not Swagger 2 or a web page")
    if not isinstance(data.get("paths"), dict) or not data["paths"]:
        raise OpenAPIError(f"{source}: the document has no `paths`")
    return data


# -- from requirements to routes -----------------------------------------------------------


def draft_routes(doc: dict[str, Any]) -> list[DraftRoute]:
    """The routes of `doc`, in its path order; one per path and set of requirements."""
    schemes = _schemes(doc)
    prefix = _server_prefix(doc)
    default = doc.get("security")
    routes: list[DraftRoute] = []
    for path, item in doc["paths"].items():
        if not isinstance(item, dict) or not isinstance(path, str) or not path.startswith("/"):
            raise OpenAPIError(f"paths: `{path}` is not a path starting with /")
        by_key: dict[tuple[object, ...], DraftRoute] = {}
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict) or method == "trace":
                continue  # TRACE echoes requests back (credentials included): never a route
            where = f"{method.upper()} {path}"
            route = _route(prefix + path, where, op.get("security", default), schemes)
            label = str(op.get("operationId") or op.get("summary") or "").strip().splitlines()
            route.notes.insert(0, f"{where}: {label[0]}" if label else where)
            same = by_key.get(route.key())
            if same is None:
                route.methods = [method.upper()]
                by_key[route.key()] = route
                routes.append(route)
            else:
                same.methods.append(method.upper())
                same.notes.extend(route.notes)
    return routes


def _route(path: str, where: str, security: Any, schemes: dict[str, dict[str, Any]]) -> DraftRoute:
    route = DraftRoute(path=path, methods=[])
    if security is None:
        route.notes.append("no `security` in the document: a token is required (deny by default)")
        return route
    if not isinstance(security, list) or not all(isinstance(r, dict) for r in security):
        raise OpenAPIError(f"{where}: `security` must be a list of requirement objects")
    if not security or any(not r for r in security):
        route.public = True
        route.notes.append("`security: []` or `{}`: anonymous")
        return route
    scopes: list[str] = []
    token = False
    for requirement in security:
        for name, wanted in requirement.items():
            scheme = schemes.get(name)
            if scheme is None:
                raise OpenAPIError(f"{where}: security scheme `{name}` is not in "
                                   "components.securitySchemes. Fix: declare it or correct the name")
            kind = _kind(scheme, name, where)
            if kind == "apiKey":
                route.api_key = True
                if str(scheme.get("in")) != "header" or str(scheme.get("name", "")).lower() != "x-api-key":
                    route.notes.append(f"scheme `{name}` sends its key as {scheme.get('in')} "
                                       f"`{scheme.get('name')}`; the edge reads X-API-Key")
            elif kind == "mutualTLS":
                route.client_cert = True
            else:
                token = True
                if kind in ("oauth2", "openIdConnect") and isinstance(wanted, list):
                    scopes += [str(s) for s in wanted if str(s) not in scopes]
    if len(security) > 1 and token:
        route.notes.append("alternatives are OR in OpenAPI; the route asks for every scope listed (AND)")
    route.scopes = tuple(scopes)
    if route.client_cert and not token and not route.api_key:
        route.notes.append("a client certificate alone: a token is still required at the edge")
    return route


def _kind(scheme: dict[str, Any], name: str, where: str) -> str:
    kind = str(scheme.get("type", ""))
    if kind == "http":
        if str(scheme.get("scheme", "")).lower() == "bearer":
            return "bearer"
        raise OpenAPIError(f"{where}: scheme `{name}` is HTTP {scheme.get('scheme')}, which the edge "
                           "cannot decide. Fix: use bearer tokens or API keys, or leave the route out")
    if kind not in ("oauth2", "openIdConnect", "apiKey", "mutualTLS"):
        raise OpenAPIError(f"{where}: scheme `{name}` has unknown type `{kind}`")
    return kind


def _schemes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = (doc.get("components") or {}).get("securitySchemes") or {}
    if not isinstance(found, dict):
        raise OpenAPIError("components.securitySchemes must be a mapping")
    schemes: dict[str, dict[str, Any]] = {}
    for name, scheme in found.items():
        if isinstance(scheme, dict) and "$ref" in scheme:
            ref = str(scheme["$ref"])
            target = found.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/securitySchemes/") else None
            if not isinstance(target, dict) or "$ref" in target:
                raise OpenAPIError(f"components.securitySchemes.{name}: $ref `{ref}` is not a local scheme")
            scheme = target
        if not isinstance(scheme, dict):
            raise OpenAPIError(f"components.securitySchemes.{name} must be a mapping")
        schemes[str(name)] = scheme
    return schemes


def _server_prefix(doc: dict[str, Any]) -> str:
    servers = doc.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return ""
    path = urlsplit(str(servers[0].get("url", ""))).path.rstrip("/")
    if "{" in path:
        raise OpenAPIError("servers[0].url has a variable in its path. Fix: pass a document "
                           "whose first server is the public URL")
    return path


# -- writing the policy --------------------------------------------------------------------


def _scalar(value: str) -> str:
    return value if _PLAIN.match(value) and not value[0].isdigit() else json.dumps(value)


def _flow(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def render_policy(doc: dict[str, Any], source: str, *, issuer: str, audience: str, upstream: str) -> str:
    """The policy YAML for `doc`, with a comment per route saying where it came from."""
    routes = draft_routes(doc)
    info: dict[str, Any] = doc["info"] if isinstance(doc.get("info"), dict) else {}
    title = " ".join(str(info.get(k, "")) for k in ("title", "version")).strip() or "an API"
    lines = [
        f"# Edge policy drafted by `bastion edge init` from {source}",
        f"# ({title}). Review it: OpenAPI cannot say what quotas, roles or body limits fit.",
        "listen: 127.0.0.1:8443            # where the proxy listens; add `tls:` before exposing it",
        "decision: 127.0.0.1:8600          # where `bastion edge serve` listens",
        f"issuer: {_scalar(issuer)}",
        f"audience: {_scalar(audience)}",
        f"upstream: {_scalar(upstream)}",
    ]
    if any(r.client_cert for r in routes):
        lines += [
            "tls:                              # the document asks for client certificates (mutualTLS)",
            "  cert: cert.pem                  # paths relative to this file",
            "  key: key.pem",
            "  client_ca: ca.pem               # the CA that signs client certificates",
        ]
    if any(r.api_key for r in routes):
        lines.append("api_keys: {file: apikeys.json}    # or {database: postgresql+asyncpg://...}")
    lines.append("routes:                           # first match wins; anything else is refused (404)")
    for route in routes:
        lines += [f"  # {note}" for note in route.notes]
        lines.append(f"  - path: {_scalar(route.path)}")
        lines.append(f"    methods: {_flow(route.methods)}")
        if route.public:
            lines.append("    public: true")
        if route.scopes:
            lines.append(f"    scopes: {_flow(route.scopes)}")
        if route.api_key:
            lines.append("    api_key: true")
        if route.client_cert:
            lines.append("    client_cert: required")
    return "\n".join(lines) + "\n"
