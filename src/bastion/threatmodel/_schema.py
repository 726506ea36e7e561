"""Validation of a model document against the schema, collecting every problem with its line.

Each problem names the file, the line and the fix; unknown keys suggest the nearest known one,
so a typo such as `encrpyted` does not silently leave a control at its default.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, cast

from bastion.threatmodel._errors import Problem, ThreatModelError
from bastion.threatmodel._fields import FIELDS_BY_KIND, TLS_PROTOCOLS, Field
from bastion.threatmodel._yamlsrc import Located, Path
from bastion.threatmodel.model import (
    CLASSIFICATIONS,
    DREAD_FACTORS,
    Assumption,
    Boundary,
    DataAsset,
    DreadOverride,
    Element,
    ElementKind,
    Endpoint,
    Objective,
    Status,
    ThreatEntry,
    ThreatModel,
)

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_STATUSES: tuple[str, ...] = ("open", "mitigated", "accepted", "not_applicable")
_TOP = (
    "version", "name", "description", "objectives", "assets", "assumptions", "boundaries",
    "external_entities", "processes", "data_stores", "flows", "threats", "rules", "verify",
)
_SECTIONS: dict[str, ElementKind] = {
    "external_entities": "external_entity",
    "processes": "process",
    "data_stores": "data_store",
    "flows": "flow",
}


class _Reader:
    """Reads typed values out of located data, recording problems instead of stopping."""

    def __init__(self, src: Located) -> None:
        self.src = src
        self.problems: list[Problem] = []

    def fail(self, path: Path, message: str, fix: str) -> None:
        self.problems.append(Problem(self.src.file, self.src.line(path), message, fix))

    def mapping(self, value: Any, path: Path, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"{_where(path)} must be a mapping", "write `key: value` lines")
            return {}
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean `{close[0]}`?" if close else "allowed: " + ", ".join(allowed)
                self.fail((*path, key), f"unknown key `{key}` in {_where(path)}", hint)
        return cast(dict[str, Any], value)

    def items(self, value: Any, path: Path) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"{_where(path)} must be a list", "write one `- item` per line")
            return []
        return value

    def text(self, data: dict[str, Any], key: str, path: Path, *, required: bool = False,
             default: str = "") -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(path, f"{_where(path)} needs `{key}`", f"add `{key}: ...`")
            return default
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.fail((*path, key), f"`{key}` must be text", f"write `{key}: some text`")
            return default
        return str(value)

    def ident(self, data: dict[str, Any], path: Path, seen: set[str]) -> str:
        value = self.text(data, "id", path, required=True)
        if value and not _ID.match(value):
            self.fail((*path, "id"), f"id `{value}` is not lower-case letters, digits, - and _",
                      "rename it, e.g. `orders-api`")
        elif value in seen:
            self.fail((*path, "id"), f"id `{value}` is used twice", "give each element its own id")
        seen.add(value)
        return value

    def field(self, data: dict[str, Any], spec: Field, path: Path) -> Any:
        if spec.name not in data or data[spec.name] is None:
            return spec.default
        value = data[spec.name]
        here = (*path, spec.name)
        if spec.type == "bool":
            if isinstance(value, bool):
                return value
            self.fail(here, f"`{spec.name}` must be true or false", f"write `{spec.name}: true`")
        elif spec.type in ("str", "str?"):
            if isinstance(value, str):
                return value
            self.fail(here, f"`{spec.name}` must be text", f"quote it: `{spec.name}: \"{value}\"`")
        elif spec.type == "int?":
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
            self.fail(here, f"`{spec.name}` must be a whole number", f"write `{spec.name}: 100`")
        elif spec.type == "enum":
            if value in spec.choices:
                return value
            self.fail(here, f"`{spec.name}` is `{value}`, not one of the known values",
                      "use one of: " + ", ".join(spec.choices))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        else:
            self.fail(here, f"`{spec.name}` must be a list of text", f"write `{spec.name}: [a, b]`")
        return spec.default


def _where(path: Path) -> str:
    return "the model" if not path else "`" + ".".join(str(p) for p in path) + "`"


def parse_model(src: Located) -> ThreatModel:
    """Validate located YAML data and build the model; raises ThreatModelError listing problems."""
    r = _Reader(src)
    top = r.mapping(src.data if src.data is not None else {}, (), _TOP)
    if top.get("version", 1) != 1:
        r.fail(("version",), "unsupported model version", "set `version: 1`")
    name = r.text(top, "name", (), required=True)
    seen: set[str] = set()
    assets = tuple(_asset(r, v, ("assets", i), seen) for i, v in
                   enumerate(r.items(top.get("assets"), ("assets",))))
    boundaries = tuple(_boundary(r, v, ("boundaries", i), seen) for i, v in
                       enumerate(r.items(top.get("boundaries"), ("boundaries",))))
    elements: list[Element] = []
    for section, kind in _SECTIONS.items():
        for i, value in enumerate(r.items(top.get(section), (section,))):
            elements.append(_element(r, value, (section, i), kind, seen))
    model = ThreatModel(
        name=name,
        description=r.text(top, "description", ()),
        file=src.file,
        objectives=tuple(_objective(r, v, ("objectives", i)) for i, v in
                         enumerate(r.items(top.get("objectives"), ("objectives",)))),
        assets=assets,
        assumptions=tuple(_assumption(r, v, ("assumptions", i)) for i, v in
                          enumerate(r.items(top.get("assumptions"), ("assumptions",)))),
        boundaries=boundaries,
        elements=tuple(elements),
        threats=tuple(_threat(r, v, ("threats", i)) for i, v in
                      enumerate(r.items(top.get("threats"), ("threats",)))),
        rule_files=tuple(str(v) for v in r.items(top.get("rules"), ("rules",))),
        verify_cwd=r.text(r.mapping(top.get("verify") or {}, ("verify",), ("cwd",)), "cwd",
                          ("verify",)) or None,
    )
    _check_references(r, model)
    if r.problems:
        raise ThreatModelError(r.problems)
    return model


def _asset(r: _Reader, value: Any, path: Path, seen: set[str]) -> DataAsset:
    d = r.mapping(value, path, ("id", "name", "classification", "pii", "credentials", "description"))
    ident = r.ident(d, path, seen)
    classification = r.text(d, "classification", path, default="internal")
    if classification not in CLASSIFICATIONS:
        r.fail((*path, "classification"), f"classification `{classification}` is unknown",
               "use one of: " + ", ".join(CLASSIFICATIONS))
        classification = "internal"
    return DataAsset(
        id=ident, name=r.text(d, "name", path, default=ident), classification=classification,
        pii=bool(r.field(d, Field("pii", "bool", False, ""), path)),
        credentials=bool(r.field(d, Field("credentials", "bool", False, ""), path)),
        description=r.text(d, "description", path), line=src_line(r, path),
    )


def src_line(r: _Reader, path: Path) -> int:
    return r.src.line(path)


def _objective(r: _Reader, value: Any, path: Path) -> Objective:
    d = r.mapping(value, path, ("id", "description", "assets"))
    assets = r.field(d, Field("assets", "strlist", (), ""), path)
    return Objective(r.text(d, "id", path, required=True), r.text(d, "description", path,
                     required=True), tuple(assets), src_line(r, path))


def _assumption(r: _Reader, value: Any, path: Path) -> Assumption:
    d = r.mapping(value, path, ("id", "description"))
    return Assumption(r.text(d, "id", path, required=True),
                      r.text(d, "description", path, required=True), src_line(r, path))


def _boundary(r: _Reader, value: Any, path: Path, seen: set[str]) -> Boundary:
    d = r.mapping(value, path, ("id", "name", "parent", "untrusted", "description"))
    ident = r.ident(d, path, seen)
    return Boundary(
        id=ident, name=r.text(d, "name", path, default=ident),
        parent=r.text(d, "parent", path) or None,
        untrusted=bool(r.field(d, Field("untrusted", "bool", False, ""), path)),
        description=r.text(d, "description", path), line=src_line(r, path),
    )


def _element(r: _Reader, value: Any, path: Path, kind: ElementKind, seen: set[str]) -> Element:
    specs = FIELDS_BY_KIND[kind]
    base = ("id", "name", "description", "boundary")
    extra = ("from", "to") if kind == "flow" else ("endpoints",) if kind == "process" else ()
    d = r.mapping(value, path, (*base, *extra, *(s.name for s in specs)))
    ident = r.ident(d, path, seen)
    attrs = {s.name: r.field(d, s, path) for s in specs}
    if kind == "flow":
        for end in ("from", "to"):
            attrs[end] = r.text(d, end, path, required=True)
        if "encrypted" not in d:
            attrs["encrypted"] = str(attrs["protocol"]).lower() in TLS_PROTOCOLS
        if "certificate_validation" not in d:
            attrs["certificate_validation"] = attrs["encrypted"]
    endpoints: list[Endpoint] = []
    if kind == "process":
        ep_seen: set[str] = set()
        for i, ep in enumerate(r.items(d.get("endpoints"), (*path, "endpoints"))):
            endpoints.append(_endpoint(r, ep, (*path, "endpoints", i), ident, ep_seen))
    return Element(
        id=ident, kind=kind, name=r.text(d, "name", path, default=ident),
        boundary=r.text(d, "boundary", path) or None, description=r.text(d, "description", path),
        attrs=attrs, line=src_line(r, path), endpoints=tuple(endpoints),
    )


def _endpoint(r: _Reader, value: Any, path: Path, process: str, seen: set[str]) -> Endpoint:
    specs = FIELDS_BY_KIND["endpoint"]
    d = r.mapping(value, path, ("id", *(s.name for s in specs)))
    attrs = {s.name: r.field(d, s, path) for s in specs}
    if not attrs["path"]:
        r.fail(path, f"{_where(path)} needs `path`", "add `path: /things/{thing_id}`")
    ident = r.ident(d, path, seen) if "id" in d else _slug(attrs["method"], attrs["path"])
    return Endpoint(id=ident, process=process, attrs=attrs, line=src_line(r, path))


def _slug(method: str, path: str) -> str:
    return (method.lower() + "-" + re.sub(r"[^a-z0-9]+", "-", path.lower())).strip("-")


def _threat(r: _Reader, value: Any, path: Path) -> ThreatEntry:
    d = r.mapping(value, path, ("id", "status", "mitigation", "tests", "reason", "owner", "dread"))
    status = r.text(d, "status", path, required=True, default="open")
    if status not in _STATUSES:
        r.fail((*path, "status"), f"status `{status}` is unknown", "use one of: " + ", ".join(_STATUSES))
        status = "open"
    mitigation = r.text(d, "mitigation", path)
    reason, owner = r.text(d, "reason", path), r.text(d, "owner", path)
    if status == "mitigated" and not mitigation:
        r.fail(path, "a mitigated threat must name its mitigation", "add `mitigation: ...`")
    if status in ("accepted", "not_applicable") and not reason:
        r.fail(path, f"an {status} threat needs a reason", "add `reason: ...`")
    if status == "accepted" and not owner:
        r.fail(path, "an accepted threat needs an owner", "add `owner: team-or-person`")
    dread = None
    if "dread" in d:
        dread = _dread_override(r, d["dread"], (*path, "dread"))
    return ThreatEntry(
        pattern=r.text(d, "id", path, required=True), status=cast(Status, status),
        mitigation=mitigation, tests=tuple(r.field(d, Field("tests", "strlist", (), ""), path)),
        reason=reason, owner=owner, dread=dread, line=src_line(r, path),
    )


def _dread_override(r: _Reader, value: Any, path: Path) -> DreadOverride:
    d = r.mapping(value, path, (*DREAD_FACTORS, "reason"))
    factors: dict[str, int] = {}
    for name in DREAD_FACTORS:
        if name in d:
            v = d[name]
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10:
                factors[name] = v
            else:
                r.fail((*path, name), f"DREAD factor `{name}` must be a whole number 0-10",
                       f"write `{name}: 5`")
    reason = r.text(d, "reason", path)
    if not reason:
        r.fail(path, "a DREAD override needs the reason it was changed", "add `reason: ...`")
    return DreadOverride(factors, reason)


def _check_references(r: _Reader, model: ThreatModel) -> None:
    asset_ids = {a.id for a in model.assets}
    boundary_ids = {b.id for b in model.boundaries}
    node_ids = {e.id for e in model.nodes}

    def ref(ok: set[str], value: str, line: int, what: str) -> None:
        if value not in ok:
            close = difflib.get_close_matches(value, sorted(ok), n=1)
            fix = f"did you mean `{close[0]}`?" if close else f"declare {what} `{value}` first"
            r.problems.append(Problem(model.file, line, f"unknown {what} `{value}`", fix))

    for b in model.boundaries:
        if b.parent:
            ref(boundary_ids, b.parent, b.line, "boundary")
    if not r.problems:
        for b in model.boundaries:
            seen: list[str] = []
            cur: str | None = b.id
            while cur is not None and cur not in seen:
                seen.append(cur)
                cur = model.boundary(cur).parent
            if cur is not None:
                r.problems.append(Problem(model.file, b.line, f"boundary `{b.id}` is nested in "
                                          "itself", "remove one `parent` from the cycle"))
    for o in model.objectives:
        for a in o.assets:
            ref(asset_ids, a, o.line, "asset")
    for e in model.elements:
        if e.boundary:
            ref(boundary_ids, e.boundary, e.line, "boundary")
        for key in ("handles", "stores", "data"):
            for a in e.attrs.get(key, ()):
                ref(asset_ids, a, e.line, "asset")
        if e.kind == "flow":
            ref(node_ids, e.attrs["from"], e.line, "element")
            ref(node_ids, e.attrs["to"], e.line, "element")
        for ep in e.endpoints:
            for a in ep.attrs["returns"]:
                ref(asset_ids, a, ep.line, "asset")
