"""An edge policy (`bastion edge`) read as the gateway element of a model.

A process `{kind: gateway, edge_policy: edge.yaml}` takes its endpoints from the policy's
routes (one per route and method, first match wins as at the edge) and gains facts the rules
judge: TLS and mTLS at the proxy, public routes, routes without quotas, routes counted only per
address, token routes that need no scope or role, routes bound to a client certificate. So the
model follows the policy that is deployed instead of a hand-written copy of it.

The package stands alone (its import wall), so the policy is read here with the model's own
safe YAML loader, for the fields that become facts; `bastion edge serve` and `render` check the
whole file with `bastion.edge.policy`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from bastion.threatmodel._errors import Problem, ThreatModelError
from bastion.threatmodel._fields import FIELDS_BY_KIND
from bastion.threatmodel._schema import _slug
from bastion.threatmodel._yamlsrc import Located, load_located, read_source
from bastion.threatmodel.model import Element, Endpoint, ThreatModel

# Facts of every process (an element without an edge policy has these values), so a rule can
# name them on any process.
EDGE_FACTS: dict[str, Any] = {
    "edge": False,
    "edge_tls": False,
    "edge_mtls": False,
    "edge_routes": 0,
    "edge_public_routes": 0,
    "edge_token_routes": 0,
    "edge_unquoted_routes": 0,
    "edge_address_only_routes": 0,
    "edge_wide_routes": 0,
    "edge_unbound_token_routes": 0,
    "edge_decision_cache_seconds": 0,
}
_ENDPOINT_METHODS = FIELDS_BY_KIND["endpoint"][0].choices  # HEAD and OPTIONS mirror GET: no endpoint
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def include_edge_policies(model: ThreatModel) -> ThreatModel:
    """The model with each `edge_policy` process filled from its policy file (relative to the model)."""
    problems: list[Problem] = []
    elements: list[Element] = []
    for element in model.elements:
        name = element.attrs.get("edge_policy") if element.kind == "process" else None
        if not name:
            elements.append(element)
            continue
        if element.attrs["kind"] != "gateway" or element.endpoints:
            problems.append(Problem(model.file, element.line, f"process `{element.id}` names an edge_policy; "
                                    "it must be `kind: gateway` with no endpoints of its own",
                                    "set `kind: gateway` and let the policy's routes be its endpoints"))
            elements.append(element)
            continue
        file = Path(model.file).parent / name
        src = load_located(read_source(file, "edge policy"), str(file))
        facts, endpoints = _read_policy(src, element.id, problems)
        elements.append(dataclasses.replace(element, attrs={**element.attrs, **facts}, endpoints=endpoints))
    if problems:
        raise ThreatModelError(problems)
    return dataclasses.replace(model, elements=tuple(elements), _index={})


class _Policy:
    """Typed reads of the policy's located data, recording problems with the policy's lines."""

    def __init__(self, src: Located, problems: list[Problem]) -> None:
        self.src = src
        self.problems = problems

    def fail(self, path: tuple[str | int, ...], what: str, fix: str) -> None:
        where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        self.problems.append(Problem(self.src.file, self.src.line(path), f"edge policy: {where} {what}", fix))

    def get(self, data: Any, path: tuple[str | int, ...], kind: type, default: Any) -> Any:
        value = data.get(path[-1]) if isinstance(data, dict) else None
        if value is None:
            return default
        if kind is list and not (isinstance(value, list) and all(isinstance(v, str | dict) for v in value)):
            self.fail(path, "must be a list", "write `[a, b]`")
            return default
        if kind is not list and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
            self.fail(path, f"must be {kind.__name__}", "check it with `bastion edge render`")
            return default
        return value


def _read_policy(src: Located, process: str, problems: list[Problem]) -> tuple[dict[str, Any], tuple[Endpoint, ...]]:
    p = _Policy(src, problems)
    top = src.data if isinstance(src.data, dict) else {}
    if not isinstance(src.data, dict) or not isinstance(top.get("routes"), list) or not top["routes"]:
        p.fail(("routes",), "is missing or empty", "an edge policy lists its routes under `routes:`")
        return {}, ()
    tls = p.get(top, ("tls",), dict, {})
    facts = {**EDGE_FACTS, "edge": True, "edge_tls": bool(tls.get("cert")), "edge_mtls": bool(tls.get("client_ca")),
             "edge_decision_cache_seconds": p.get(top, ("decision_cache_seconds",), int, 0)}
    endpoints: dict[str, Endpoint] = {}
    for i, route in enumerate(top["routes"]):
        if not isinstance(route, dict) or not isinstance(route.get("path"), str):
            p.fail(("routes", i, "path"), "is missing", "give each route a `path:`")
            continue
        _count(facts, p, route, i)
        for endpoint in _endpoints(p, route, i, process):
            endpoints.setdefault(endpoint.id, endpoint)  # first match wins: a later duplicate is unreachable
    return facts, tuple(endpoints.values())


def _count(facts: dict[str, Any], p: _Policy, route: dict[str, Any], i: int) -> None:
    public = p.get(route, ("routes", i, "public"), bool, False)
    quotas = [q for q in p.get(route, ("routes", i, "quotas"), list, []) if isinstance(q, dict)]
    facts["edge_routes"] += 1
    facts["edge_public_routes"] += public
    facts["edge_unquoted_routes"] += not quotas
    if public:
        return
    facts["edge_token_routes"] += 1
    facts["edge_address_only_routes"] += bool(quotas) and all(q.get("per") == "address" for q in quotas)
    facts["edge_wide_routes"] += not (p.get(route, ("routes", i, "scopes"), list, [])
                                      or p.get(route, ("routes", i, "roles"), list, []))
    facts["edge_unbound_token_routes"] += route.get("client_cert") != "required"


def _endpoints(p: _Policy, route: dict[str, Any], i: int, process: str) -> list[Endpoint]:
    defaults = {f.name: f.default for f in FIELDS_BY_KIND["endpoint"]}
    quotas = [q for q in p.get(route, ("routes", i, "quotas"), list, []) if isinstance(q, dict)]
    path = route["path"]
    found = []
    for method in p.get(route, ("routes", i, "methods"), list, []):
        method = str(method).upper()
        if method not in _ENDPOINT_METHODS:
            continue
        attrs = {
            **defaults, "method": method, "path": path,
            "scopes": tuple(str(s) for s in p.get(route, ("routes", i, "scopes"), list, [])),
            "roles": tuple(str(r) for r in p.get(route, ("routes", i, "roles"), list, [])),
            "object_ids": tuple(_PARAM.findall(path)),
            "rate_limit": f"{quotas[0].get('limit')}/{quotas[0].get('window')}" if quotas else None,
            "authenticated": not p.get(route, ("routes", i, "public"), bool, False),
            "anti_automation": bool(quotas),
            "documented": True,
        }
        found.append(Endpoint(id=_slug(method, path), process=process, attrs=attrs, line=p.src.line(("routes", i))))
    return found
