"""JSON and CSV renderings of an analysis (machine-readable, stable field names)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from bastion.threatmodel.assess import Analysis, Assessment
from bastion.threatmodel.gate import Diff
from bastion.threatmodel.model import STATUSES
from bastion.threatmodel.rules import Rule

CSV_COLUMNS = (
    "id", "rule", "title", "stride", "element", "element_type", "status", "effective_status",
    "score", "band", "damage", "reproducibility", "exploitability", "affected_users",
    "discoverability", "owasp_api", "cwe", "capec", "mitigation", "reason", "owner", "tests",
    "evidence",
)


def row(a: Assessment) -> dict[str, Any]:
    """One threat as a flat mapping (the CSV row; the JSON adds structure)."""
    r = a.rule
    return {
        "id": a.id, "rule": r.id, "title": r.title, "stride": r.stride_name,
        "element": a.threat.element_id, "element_type": a.threat.element_type,
        "status": a.status, "effective_status": a.effective, "score": a.score.value,
        "band": a.score.band, **a.score.factors, "owasp_api": r.owasp_api or "",
        "cwe": " ".join(f"CWE-{c}" for c in r.cwe), "capec": " ".join(f"CAPEC-{c}" for c in r.capec),
        "mitigation": a.mitigation, "reason": a.reason, "owner": a.owner,
        "tests": " ".join(a.tests), "evidence": a.evidence_state,
    }


def to_json(analysis: Analysis) -> str:
    m = analysis.model
    threats = []
    for a in [*analysis.register(), *analysis.by_status("not_applicable")]:
        item = row(a)
        item.update(cwe=list(a.rule.cwe), capec=list(a.rule.capec), tests=list(a.tests),
                    adjustments=list(a.score.adjustments), note=a.note,
                    evidence=[{"test": e.test, "passed": e.passed, "date": e.date,
                               "commit": e.commit} for e in a.evidence],
                    evidence_state=a.evidence_state)
        threats.append(item)
    counts = {s: len(analysis.by_status(s)) for s in STATUSES}
    doc = {
        "model": {"name": m.name, "file": m.file, "description": m.description},
        "objectives": [{"id": o.id, "description": o.description, "assets": list(o.assets)}
                       for o in m.objectives],
        "assumptions": [{"id": x.id, "description": x.description} for x in m.assumptions],
        "summary": counts,
        "threats": threats,
        "warnings": list(analysis.warnings),
    }
    return json.dumps(doc, indent=2) + "\n"


def to_csv(analysis: Analysis) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for a in analysis.register():
        writer.writerow(row(a))
    return out.getvalue()


def diff_to_json(d: Diff) -> str:
    """`bastion threats diff --format json`."""
    def brief(a: Assessment) -> dict[str, Any]:
        return {"id": a.id, "score": a.score.value, "band": a.score.band, "status": a.effective}

    return json.dumps({"added": [brief(a) for a in d.added],
                       "removed": [brief(a) for a in d.removed],
                       "changed": [vars(c) for c in d.changed]}, indent=2) + "\n"


def rules_to_json(rules: tuple[Rule, ...]) -> str:
    """`bastion threats rules --format json`: the library as data."""
    return json.dumps([{
        "id": r.id, "title": r.title, "stride": r.stride_name, "applies_to": list(r.applies_to),
        "when": r.when.source,
        "mitigated_when": r.mitigated_when.source if r.mitigated_when else None,
        "owasp_api": r.owasp_api, "cwe": list(r.cwe), "capec": list(r.capec),
        "dread": list(r.dread), "controls": list(r.controls),
    } for r in rules], indent=2) + "\n"
