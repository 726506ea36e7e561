"""Facts about each element, derived from the model, as the names rule conditions read.

A view is the element's declared attributes plus computed facts: whether it is exposed across
a trust boundary to an untrusted party, the highest data classification it touches, whether a
flow crosses a boundary, and so on. Views are plain dicts; the expression language reads them.
"""

from __future__ import annotations

from typing import Any

from bastion.threatmodel.edgepolicy import EDGE_FACTS
from bastion.threatmodel.model import CLASSIFICATIONS, Element, Endpoint, ThreatModel

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CONSTANTS: dict[str, int] = {c.upper(): i for i, c in enumerate(CLASSIFICATIONS)}


class Facts:
    """Computes and caches the views of every element of one model."""

    def __init__(self, model: ThreatModel) -> None:
        self.model = model
        self._nodes: dict[str, dict[str, Any]] = {}
        self._flows = model.flows
        for node in model.nodes:
            self._nodes[node.id] = self._node_view(node)

    # -- shared predicates -------------------------------------------------------------
    def untrusted_boundary(self, element: Element) -> bool:
        return any(self.model.boundary(b).untrusted
                   for b in self.model.boundary_chain(element.boundary))

    def untrusted_source(self, element: Element) -> bool:
        """An anonymous external party, or anything inside a boundary marked untrusted."""
        if element.kind == "external_entity" and not element.attrs["trusted"]:
            return True
        return self.untrusted_boundary(element)

    def crosses_boundary(self, flow: Element) -> bool:
        src = self.model.element(flow.attrs["from"])
        dst = self.model.element(flow.attrs["to"])
        return src.boundary != dst.boundary

    def _levels(self, asset_ids: Any) -> list[int]:
        return [self.model.asset(a).level for a in asset_ids]

    def _assets(self, asset_ids: Any, attr: str) -> bool:
        return any(getattr(self.model.asset(a), attr) for a in asset_ids)

    # -- views -------------------------------------------------------------------------
    def _node_view(self, node: Element) -> dict[str, Any]:
        inbound = [f for f in self._flows if f.attrs["to"] == node.id]
        outbound = [f for f in self._flows if f.attrs["from"] == node.id]
        touching = inbound + outbound
        assets = [a for f in touching for a in f.attrs["data"]]
        assets += list(node.attrs.get("handles", ())) + list(node.attrs.get("stores", ()))
        assets += [a for ep in node.endpoints for a in ep.attrs["returns"]]
        exposed = any(self.crosses_boundary(f) and self.untrusted_source(
            self.model.element(f.attrs["from"])) for f in inbound)
        if node.kind == "external_entity":
            exposed = not node.attrs["trusted"]
        sinks = [self.model.element(f.attrs["to"]) for f in outbound]
        view: dict[str, Any] = {
            **(EDGE_FACTS if node.kind == "process" else {}),
            **node.attrs,
            "id": node.id,
            "name": node.name,
            "type": node.kind,
            "boundary": node.boundary or "",
            "exposed": exposed,
            "in_untrusted_boundary": self.untrusted_boundary(node),
            "sensitivity": max(self._levels(assets), default=-1),
            "handles_pii": self._assets(assets, "pii"),
            "handles_credentials": self._assets(assets, "credentials"),
            "inbound_flows": len(inbound),
            "outbound_flows": len(outbound),
            "endpoint_count": len(node.endpoints),
            "authenticated_everywhere": bool(outbound) and all(
                f.attrs["authentication"] != "none" for f in outbound),
            "writes_sql": any(s.kind == "data_store" and s.attrs["kind"] == "sql" for s in sinks),
            "uses_data_store": any(s.kind == "data_store" for s in sinks),
            "calls_external": any(s.kind == "external_entity" for s in sinks),
            "cookie_sessions": any(f.attrs["authentication"] == "session_cookie" for f in inbound),
            "behind_rate_limiter": bool(inbound) and all(
                f.attrs["rate_limited"] or self._rate_limiting(f.attrs["from"]) for f in inbound),
            "inbound_auth": tuple(sorted({f.attrs["authentication"] for f in inbound})),
            "accessed_across_boundary": any(self.crosses_boundary(f) for f in touching),
        }
        return view

    def _rate_limiting(self, element_id: str) -> bool:
        element = self.model.element(element_id)
        return element.kind == "process" and bool(element.attrs["rate_limiting"])

    def node(self, element_id: str) -> dict[str, Any]:
        return self._nodes[element_id]

    def flow(self, flow: Element) -> dict[str, Any]:
        src = self.model.element(flow.attrs["from"])
        dst = self.model.element(flow.attrs["to"])
        data = flow.attrs["data"]
        return {
            **flow.attrs,
            "id": flow.id,
            "name": flow.name,
            "type": "flow",
            "crosses_boundary": self.crosses_boundary(flow),
            "from_untrusted": self.untrusted_source(src),
            "exposed": self.crosses_boundary(flow) and self.untrusted_source(src),
            "authenticated": flow.attrs["authentication"] != "none",
            "sensitivity": max(self._levels(data), default=-1),
            "carries_pii": self._assets(data, "pii"),
            "carries_credentials": self._assets(data, "credentials"),
            "handles_pii": self._assets(data, "pii"),
            "source_type": src.kind,
            "sink_type": dst.kind,
        }

    def endpoint(self, process: Element, endpoint: Endpoint) -> dict[str, Any]:
        attrs = endpoint.attrs
        pview = self._nodes[process.id]
        returns = attrs["returns"]
        return {
            **attrs,
            "id": endpoint.qualified_id,
            "name": endpoint.name,
            "type": "endpoint",
            "writes": attrs["method"] in WRITE_METHODS,
            "takes_body": attrs["method"] in BODY_METHODS,
            "exposed": pview["exposed"],
            "rate_limited": attrs["rate_limit"] is not None or bool(pview["rate_limiting"])
            or bool(pview["behind_rate_limiter"]),
            "sensitivity": max(self._levels(returns), default=-1),
            "handles_pii": self._assets(returns, "pii"),
            "returns_credentials": self._assets(returns, "credentials"),
        }
