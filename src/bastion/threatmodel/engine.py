"""Threat identification: every rule against every element of the types it targets.

STRIDE per element covers external entities, processes (and their endpoints), data stores and
flows; STRIDE per interaction (as in the Microsoft Threat Modeling Tool) examines each flow
that crosses a trust boundary together with its source and sink. A rule whose `when` is false
on an element is recorded as not applicable, so the report can show coverage, not only hits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bastion.threatmodel._errors import ExpressionError, Problem, ThreatModelError
from bastion.threatmodel.facts import CONSTANTS, Facts
from bastion.threatmodel.model import ThreatModel
from bastion.threatmodel.rules import Rule


@dataclass(frozen=True)
class Threat:
    """A rule instantiated on one element: `id` is `RULE@element` and stays stable."""

    id: str
    rule: Rule
    element_id: str
    element_type: str
    element_name: str
    line: int
    applies: bool
    facts_mitigated: bool
    facts: dict[str, Any]


@dataclass(frozen=True)
class _Target:
    element_id: str
    element_type: str
    name: str
    line: int
    names: dict[str, Any]


def _targets(model: ThreatModel, facts: Facts) -> Iterator[_Target]:
    for element in model.elements:
        if element.kind == "flow":
            names = {"element": facts.flow(element),
                     "source": facts.node(element.attrs["from"]),
                     "sink": facts.node(element.attrs["to"])}
            yield _Target(element.id, "flow", element.name, element.line, names)
            if names["element"]["crosses_boundary"]:
                yield _Target(element.id, "interaction", element.name, element.line, names)
            continue
        yield _Target(element.id, element.kind, element.name, element.line,
                      {"element": facts.node(element.id)})
        for endpoint in element.endpoints:
            yield _Target(endpoint.qualified_id, "endpoint", endpoint.name, endpoint.line,
                          {"element": facts.endpoint(element, endpoint),
                           "process": facts.node(element.id)})


def identify(model: ThreatModel, rules: tuple[Rule, ...]) -> tuple[Threat, ...]:
    """All (rule, element) pairs for matching element types, applicable or not."""
    facts = Facts(model)
    threats: list[Threat] = []
    problems: list[Problem] = []
    for target in _targets(model, facts):
        names = {**CONSTANTS, **target.names}
        for rule in rules:
            if target.element_type not in rule.applies_to:
                continue
            try:
                applies = rule.when.evaluate(names)
                mitigated = bool(applies and rule.mitigated_when is not None
                                 and rule.mitigated_when.evaluate(names))
            except ExpressionError as exc:
                problems.append(Problem(rule.file, rule.line, f"rule {rule.id} on "
                                        f"{target.element_type} {target.element_id}: {exc}",
                                        "fix the rule's condition"))
                continue
            threats.append(Threat(
                id=f"{rule.id}@{target.element_id}", rule=rule, element_id=target.element_id,
                element_type=target.element_type, element_name=target.name, line=target.line,
                applies=applies, facts_mitigated=mitigated, facts=target.names["element"],
            ))
    if problems:
        raise ThreatModelError(problems)
    return tuple(threats)
