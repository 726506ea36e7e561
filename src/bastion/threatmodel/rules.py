"""The threat library: rules kept as data (YAML), shipped in `library/` and extensible by users.

Each rule has a stable id, a STRIDE category, the element types it targets, an applicability
condition (`when`) and optionally a condition under which the model's facts already mitigate
it (`mitigated_when`), so the report can tell "applies and mitigated" from "not applicable"
(the split asked for in OWASP/pytm#152). References carry the OWASP API Security Top 10 (2023)
category, CWE and CAPEC ids; `dread` gives the default Damage, Reproducibility, Exploitability,
Affected users and Discoverability factors.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bastion.threatmodel._errors import ExpressionError, Problem, ThreatModelError
from bastion.threatmodel._yamlsrc import Located, load_located, read_source
from bastion.threatmodel.expr import Condition, compile_condition

STRIDE: dict[str, str] = {
    "S": "Spoofing",
    "T": "Tampering",
    "R": "Repudiation",
    "I": "Information disclosure",
    "D": "Denial of service",
    "E": "Elevation of privilege",
}
# STRIDE per element (Shostack, "Threat Modeling", ch. 3; Threat Dragon's table): which
# categories apply to which element type. Endpoints are parts of a process; interactions are
# flows that cross a trust boundary, examined with their source and sink (per interaction).
STRIDE_PER_ELEMENT: dict[str, str] = {
    "external_entity": "SR",
    "process": "STRIDE",
    "endpoint": "STRIDE",
    "data_store": "TRID",
    "flow": "TID",
    "interaction": "STRIDE",
}
OWASP_API_2023: dict[str, str] = {
    "API1:2023": "Broken Object Level Authorization",
    "API2:2023": "Broken Authentication",
    "API3:2023": "Broken Object Property Level Authorization",
    "API4:2023": "Unrestricted Resource Consumption",
    "API5:2023": "Broken Function Level Authorization",
    "API6:2023": "Unrestricted Access to Sensitive Business Flows",
    "API7:2023": "Server Side Request Forgery",
    "API8:2023": "Security Misconfiguration",
    "API9:2023": "Improper Inventory Management",
    "API10:2023": "Unsafe Consumption of APIs",
}
# The seed's STRIDE mitigations, as control ids a rule may claim to be mitigated by.
SEED_CONTROLS: dict[str, str] = {
    "authenticate-every-request": "S: authenticate every request",
    "validate-input": "T: validate input",
    "prepared-statements": "T: prepared statements",
    "guard-mass-assignment": "T: guard mass assignment",
    "logging-monitoring": "R: logging and monitoring",
    "avoid-excessive-data-exposure": "I: avoid excessive data exposure / asset sprawl",
    "rate-limiting": "D: rate limiting",
    "load-shedding": "D: load shedding",
    "rbac-every-endpoint": "E: enforce authorization (RBAC) on every endpoint",
}
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_KEYS = ("id", "title", "stride", "applies_to", "when", "mitigated_when", "mitigated_by",
         "description", "mitigations", "controls", "references", "dread")


@dataclass(frozen=True)
class Rule:
    """One threat of the library."""

    id: str
    title: str
    stride: str
    applies_to: tuple[str, ...]
    when: Condition
    mitigated_when: Condition | None
    mitigated_by: str
    description: str
    mitigations: tuple[str, ...]
    controls: tuple[str, ...]
    owasp_api: str | None
    cwe: tuple[int, ...]
    capec: tuple[int, ...]
    dread: tuple[int, int, int, int, int]
    file: str
    line: int

    @property
    def stride_name(self) -> str:
        return STRIDE[self.stride]


def shipped_rule_files() -> list[tuple[str, str]]:
    """(name, text) of every rule file shipped in the package, in name order."""
    folder = resources.files("bastion.threatmodel") / "library"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return [(f"bastion/threatmodel/library/{f.name}", f.read_text("utf-8")) for f in files]


@functools.cache
def shipped_library() -> tuple[Rule, ...]:
    """The shipped rules, parsed once per process (they are immutable)."""
    return parse_rules(shipped_rule_files())


def load_library(extra: Sequence[str | Path] = (), *,
                 shipped: bool = True) -> tuple[Rule, ...]:
    """Load the shipped library (unless `shipped=False`) plus user rule files."""
    if not extra:
        return shipped_library() if shipped else ()
    sources = shipped_rule_files() if shipped else []
    sources += [(str(p), read_source(p, "rule file")) for p in extra]
    return parse_rules(sources)


def parse_rules(sources: list[tuple[str, str]]) -> tuple[Rule, ...]:
    """Parse rule files given as (name, text); ids must be unique across all of them."""
    rules: list[Rule] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for name, text in sources:
        src = load_located(text, name)
        data = src.data if isinstance(src.data, dict) else {}
        items = data.get("rules")
        if not isinstance(items, list):
            problems.append(Problem(name, 1, "a rule file is a mapping with a `rules:` list",
                                    "start the file with `rules:`"))
            continue
        for i, item in enumerate(items):
            rule = _rule(src, item, i, problems)
            if rule is None:
                continue
            if rule.id in seen:
                problems.append(Problem(name, rule.line, f"rule id {rule.id} is already defined "
                                        f"in {seen[rule.id]}", "give the rule a new id"))
                continue
            seen[rule.id] = f"{name}:{rule.line}"
            rules.append(rule)
    if problems:
        raise ThreatModelError(problems)
    return tuple(rules)


def _rule(src: Located, item: Any, i: int, problems: list[Problem]) -> Rule | None:
    path = ("rules", i)
    line = src.line(path)
    before = len(problems)

    def fail(key: str, message: str, fix: str) -> None:
        problems.append(Problem(src.file, src.line((*path, key)), message, fix))

    if not isinstance(item, dict):
        fail("", "a rule must be a mapping", "write `- id: ...` with the rule's keys")
        return None
    for key in item:
        if key not in _KEYS:
            fail(key, f"unknown rule key `{key}`", "allowed: " + ", ".join(_KEYS))
    rid = str(item.get("id", ""))
    if not _RULE_ID.match(rid):
        fail("id", f"rule id `{rid}` is not like `BT-E01`", "use upper-case letters, digits, -")
    stride = str(item.get("stride", ""))
    if stride not in STRIDE:
        fail("stride", f"stride `{stride}` is not one of S, T, R, I, D, E", "use one letter")
    targets = item.get("applies_to")
    if not isinstance(targets, list) or not targets:
        fail("applies_to", "applies_to must list element types", "e.g. `applies_to: [process]`")
        targets = []
    for target in targets:
        if target not in STRIDE_PER_ELEMENT:
            fail("applies_to", f"unknown element type `{target}`",
                 "use: " + ", ".join(STRIDE_PER_ELEMENT))
        elif stride in STRIDE and stride not in STRIDE_PER_ELEMENT[target]:
            fail("stride", f"STRIDE per element: {STRIDE.get(stride)} does not apply to {target}",
                 f"{target} takes only {', '.join(STRIDE_PER_ELEMENT[target])}")
    if "flow" in targets and "interaction" in targets:
        fail("applies_to", "a rule targets flows or interactions, not both (same threat ids)",
             "split it into two rules")
    conditions: list[Condition | None] = []
    for key in ("when", "mitigated_when"):
        text = item.get(key)
        if text is None and key == "mitigated_when":
            conditions.append(None)
            continue
        try:
            conditions.append(compile_condition(str(text if text is not None else "")))
        except ExpressionError as exc:
            fail(key, f"{key}: {exc}", "write a condition in the safe expression language")
            conditions.append(None)
    refs = item.get("references") or {}
    owasp = refs.get("owasp_api") if isinstance(refs, dict) else None
    if owasp is not None and owasp not in OWASP_API_2023:
        fail("references", f"owasp_api `{owasp}` is not an OWASP API Top 10 2023 category",
             "use API1:2023 ... API10:2023")
    controls = tuple(item.get("controls") or ())
    for control in controls:
        if control not in SEED_CONTROLS:
            fail("controls", f"unknown control `{control}`", "use: " + ", ".join(SEED_CONTROLS))
    dread = item.get("dread")
    if not (isinstance(dread, list) and len(dread) == 5
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10 for v in dread)):
        fail("dread", "dread must be five whole numbers 0-10 [D, R, E, A, D]",
             "e.g. `dread: [7, 6, 6, 7, 5]`")
        dread = [0, 0, 0, 0, 0]
    if len(problems) > before or conditions[0] is None:
        return None
    return Rule(
        id=rid, title=str(item.get("title", rid)), stride=stride, applies_to=tuple(targets),
        when=conditions[0], mitigated_when=conditions[1],
        mitigated_by=str(item.get("mitigated_by", "")),
        description=str(item.get("description", "")).strip(),
        mitigations=tuple(str(m) for m in item.get("mitigations") or ()), controls=controls,
        owasp_api=owasp, cwe=tuple(int(c) for c in (refs.get("cwe") or ())) if isinstance(refs, dict) else (),
        capec=tuple(int(c) for c in (refs.get("capec") or ())) if isinstance(refs, dict) else (),
        dread=(dread[0], dread[1], dread[2], dread[3], dread[4]), file=src.file, line=line,
    )
