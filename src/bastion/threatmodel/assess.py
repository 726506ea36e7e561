"""Risk evaluation and validation: each threat's status, evidence and DREAD score.

Statuses: the model's `threats:` entries (exact id first, then fnmatch patterns in order), else
"mitigated" when the model's facts satisfy the rule's `mitigated_when`, else "open"; a rule
that does not apply is "not_applicable". The effective status used by gates turns a mitigation
with failing evidence (and, with `require_evidence`, one without any) back into "open".
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from bastion.threatmodel.dread import Score, score
from bastion.threatmodel.engine import Threat, identify
from bastion.threatmodel.evidence import Evidence
from bastion.threatmodel.model import Status, ThreatEntry, ThreatModel
from bastion.threatmodel.rules import Rule


@dataclass(frozen=True)
class Assessment:
    """One threat with its status, mitigation, evidence and score."""

    threat: Threat
    status: Status
    effective: Status
    mitigation: str
    reason: str
    owner: str
    tests: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    score: Score
    note: str
    entry_line: int | None

    @property
    def id(self) -> str:
        return self.threat.id

    @property
    def rule(self) -> Rule:
        return self.threat.rule

    @property
    def evidence_state(self) -> str:
        """`none`, `passing` or `failing` for the mitigation's tests."""
        if not self.tests:
            return "none"
        if any(not e.passed for e in self.evidence):
            return "failing"
        return "passing" if len(self.evidence) == len(self.tests) else "none"


@dataclass(frozen=True)
class Analysis:
    """The result of analysing one model with one library."""

    model: ThreatModel
    rules: tuple[Rule, ...]
    assessments: tuple[Assessment, ...]
    warnings: tuple[str, ...]

    def register(self) -> list[Assessment]:
        """Applicable threats, highest risk first (the risk register)."""
        live = [a for a in self.assessments if a.status != "not_applicable"]
        return sorted(live, key=lambda a: (-a.score.total, a.id))

    def by_status(self, status: Status) -> list[Assessment]:
        """Threats whose effective status is `status` (register order; N/A in rule order)."""
        if status == "not_applicable":
            return [a for a in self.assessments if a.status == "not_applicable"]
        return [a for a in self.register() if a.effective == status]


def _entry_for(threat_id: str, entries: tuple[ThreatEntry, ...]) -> ThreatEntry | None:
    for entry in entries:
        if entry.pattern == threat_id:
            return entry
    for entry in entries:
        if any(c in entry.pattern for c in "*?[") and fnmatch.fnmatchcase(threat_id, entry.pattern):
            return entry
    return None


def _assess(threat: Threat, entry: ThreatEntry | None, results: dict[str, Evidence],
            require_evidence: bool) -> Assessment:
    status: Status
    mitigation = reason = owner = note = ""
    tests: tuple[str, ...] = ()
    if not threat.applies:
        status, reason = "not_applicable", "the model's facts rule it out"
        # Only an exact id is a claim about this threat; a pattern may cover threats that
        # do not apply without anyone having said otherwise.
        if entry is not None and entry.status != "not_applicable" and entry.pattern == threat.id:
            note = f"model entry says {entry.status}, but the rule does not apply"
    elif entry is not None:
        status, mitigation, reason, owner = entry.status, entry.mitigation, entry.reason, entry.owner
        tests = entry.tests
    elif threat.facts_mitigated:
        status = "mitigated"
        mitigation = f"declared in the model: {threat.rule.mitigated_by or threat.rule.mitigated_when.source}"  # type: ignore[union-attr]  # facts_mitigated implies mitigated_when
    else:
        status = "open"
    evidence = tuple(results[t] for t in tests if t in results)
    effective = status
    if status == "mitigated":
        if any(not e.passed for e in evidence):
            effective, note = "open", "mitigation evidence is failing"
        elif require_evidence and (not tests or len(evidence) < len(tests)):
            effective, note = "open", "mitigation has no passing evidence"
    override = entry.dread if entry is not None and threat.applies else None
    return Assessment(
        threat=threat, status=status, effective=effective, mitigation=mitigation, reason=reason,
        owner=owner, tests=tests, evidence=evidence,
        score=score(threat.rule.dread, threat.facts, override.factors if override else None,
                    override.reason if override else ""),
        note=note, entry_line=entry.line if entry is not None else None,
    )


def analyse(model: ThreatModel, rules: tuple[Rule, ...], results: dict[str, Evidence] | None = None,
            *, require_evidence: bool = False) -> Analysis:
    """Identify threats, apply the model's statuses and evidence, and score them."""
    threats = identify(model, rules)
    results = results or {}
    used: set[int] = set()
    assessments = []
    for threat in threats:
        entry = _entry_for(threat.id, model.threats)
        if entry is not None:
            used.add(entry.line)
        assessments.append(_assess(threat, entry, results, require_evidence))
    warnings = tuple(f"{model.file}:{e.line}: threat entry `{e.pattern}` matches no threat "
                     "(renamed element or rule?)" for e in model.threats if e.line not in used)
    warnings += tuple(f"{model.file}:{a.entry_line}: {a.id}: {a.note}" for a in assessments
                      if a.note and a.status == "not_applicable")
    return Analysis(model, rules, tuple(assessments), warnings)
