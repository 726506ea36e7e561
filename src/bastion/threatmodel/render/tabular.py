"""JSON and CSV renderings of an analysis (machine-readable, stable field names)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from bastion.threatmodel.assess import Analysis, Assessment
from bastion.threatmodel.model import STATUSES

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
