"""SARIF 2.1.0 for code-scanning UIs (OASIS SARIF v2.1.0, §3).

Every rule of the library goes into `tool.driver.rules` (§3.19.23); each applicable threat is a
result located at its element's line in the model file. Mitigated and accepted threats carry a
`suppressions` entry (§3.27.23; suppression `state` §3.35.3) so viewers show them as handled, not as findings.
GitHub reads `properties.security-severity` (a number as text) to rank security results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bastion.threatmodel.assess import Analysis, Assessment
from bastion.threatmodel.rules import Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}


def _rule(rule: Rule) -> dict[str, Any]:
    tags = ["security", f"STRIDE/{rule.stride_name}"]
    tags += [rule.owasp_api] if rule.owasp_api else []
    tags += [f"CWE-{c}" for c in rule.cwe]
    sev = sum(rule.dread) / 5
    text = rule.description + ("\n\nMitigations: " + "; ".join(rule.mitigations)
                               if rule.mitigations else "")
    return {
        "id": rule.id,
        "name": "".join(w.capitalize() for w in rule.title.replace("-", " ").split() if w.isalnum()),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description or rule.title},
        "help": {"text": text},
        "defaultConfiguration": {"level": _LEVEL[_band(sev)]},
        "properties": {"tags": tags, "security-severity": f"{sev:.1f}",
                       "stride": rule.stride_name, "applies_to": list(rule.applies_to)},
    }


def _band(value: float) -> str:
    return "low" if value < 4 else "medium" if value < 6 else "high" if value < 8 else "critical"


def _result(a: Assessment, index: dict[str, int], uri: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": a.rule.id,
        "ruleIndex": index[a.rule.id],
        "level": _LEVEL[a.score.band],
        "message": {"text": f"{a.rule.title} on {a.threat.element_type} "
                            f"'{a.threat.element_name}' ({a.threat.element_id}): DREAD "
                            f"{a.score.value:.1f} ({a.score.band}), {a.effective}"},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": uri},
                                 "region": {"startLine": a.threat.line}},
            "logicalLocations": [{"name": a.threat.element_id, "kind": "element"}],
        }],
        "partialFingerprints": {"threatId/v1": a.id},
        "properties": {"threatId": a.id, "status": a.effective, "dread": a.score.factors,
                       "security-severity": f"{a.score.value:.1f}"},
    }
    if a.effective in ("mitigated", "accepted"):
        justification = a.mitigation if a.effective == "mitigated" else \
            f"{a.reason} (owner: {a.owner})"
        result["suppressions"] = [{"kind": "external", "state": "accepted",
                                   "justification": justification}]
    return result


def to_sarif(analysis: Analysis, version: str = "0.1.0") -> str:
    uri = Path(analysis.model.file).as_posix()
    rules = list(analysis.rules)
    index = {r.id: i for i, r in enumerate(rules)}
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "bastion-threats",
                "version": version,
                "informationUri": "https://owasp.org/API-Security/editions/2023/en/0x11-t10/",
                "rules": [_rule(r) for r in rules],
            }},
            "results": [_result(a, index, uri) for a in analysis.register()],
        }],
    }
    return json.dumps(log, indent=2) + "\n"
