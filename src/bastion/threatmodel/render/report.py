"""Human reports: Markdown and a self-contained HTML page (DFD embedded, no external assets).

Both follow the six-step process: objectives and assets, assumptions, the diagram, the risk
register (sorted by DREAD), threats per element, then the not-applicable list that shows what
the rules examined and ruled out.
"""

from __future__ import annotations

from collections import defaultdict
from importlib import resources

import jinja2

from bastion.threatmodel.assess import Analysis, Assessment
from bastion.threatmodel.model import STATUSES
from bastion.threatmodel.render.diagram import diagram_svg, to_mermaid

_STATUS_TEXT = {"open": "applies and open", "mitigated": "applies and mitigated",
                "accepted": "accepted with reason", "not_applicable": "not applicable"}


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _evidence(a: Assessment) -> str:
    if not a.tests:
        return "no tests named"
    if not a.evidence:
        return "not run yet (`bastion threats verify`)"
    return "; ".join(f"{'pass' if e.passed else 'FAIL'} {e.test} ({e.date}"
                     f"{', ' + e.commit[:10] if e.commit else ''})" for e in a.evidence)


def by_element(analysis: Analysis) -> dict[str, list[Assessment]]:
    groups: dict[str, list[Assessment]] = defaultdict(list)
    for a in analysis.register():
        groups[a.threat.element_id].append(a)
    return dict(sorted(groups.items()))


def to_markdown(analysis: Analysis) -> str:
    m = analysis.model
    out = [f"# Threat model: {m.name}", ""]
    if m.description:
        out += [m.description.strip(), ""]
    counts = {s: len(analysis.by_status(s)) for s in STATUSES}
    out += ["| " + " | ".join(_STATUS_TEXT[s] for s in counts) + " |",
            "|" + "---|" * len(counts), "| " + " | ".join(str(v) for v in counts.values()) + " |", ""]
    out += ["## 1. Objectives and assets", ""]
    out += [f"- **{o.id}**: {o.description}" + (f" (assets: {', '.join(o.assets)})" if o.assets else "")
            for o in m.objectives]
    out += ["", "| Asset | Classification | PII | Credentials |", "|---|---|---|---|"]
    out += [f"| {a.name} | {a.classification} | {'yes' if a.pii else ''} | "
            f"{'yes' if a.credentials else ''} |" for a in m.assets]
    out += ["", "## 2. Assumptions", ""]
    out += [f"- **{x.id}**: {x.description}" for x in m.assumptions] or ["- none stated"]
    out += ["", "## 3. Data-flow diagram", "", "```mermaid", to_mermaid(m).rstrip(), "```", ""]
    out += ["## 4-5. Risk register (DREAD, highest first)", "",
            "| Threat | STRIDE | Element | DREAD | Band | Status | OWASP API |",
            "|---|---|---|---|---|---|---|"]
    for a in analysis.register():
        out.append(f"| {a.rule.id} {_md(a.rule.title)} | {a.rule.stride_name} | "
                   f"{a.threat.element_id} | {a.score.value:.1f} | {a.score.band} | "
                   f"{_STATUS_TEXT[a.effective]} | {a.rule.owasp_api or ''} |")
    out += ["", "## Threats per element", ""]
    for element, items in by_element(analysis).items():
        out += [f"### {element}", ""]
        for a in items:
            out.append(f"- **{a.id}** ({a.rule.stride_name}, {a.score.value:.1f} {a.score.band}, "
                       f"{_STATUS_TEXT[a.effective]}): {a.rule.description}")
            if a.mitigation:
                out.append(f"  - Mitigation: {a.mitigation}; evidence: {_evidence(a)}")
            if a.reason and a.status != "not_applicable":
                out.append(f"  - Reason: {a.reason} (owner: {a.owner or 'n/a'})")
            if a.note:
                out.append(f"  - Note: {a.note}")
            if a.effective == "open" and a.rule.mitigations:
                out.append(f"  - Suggested: {'; '.join(a.rule.mitigations)}")
        out.append("")
    na = analysis.by_status("not_applicable")
    out += ["## Not applicable (ruled out by the model's facts)", "",
            ", ".join(a.id for a in na) or "none", ""]
    if analysis.warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in analysis.warnings] + [""]
    return "\n".join(out)


def _env() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: (resources.files("bastion.threatmodel") / "render" / name).read_text("utf-8")
    )
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)


def to_html(analysis: Analysis) -> str:
    """Self-contained HTML: inline CSS and the DFD as inline SVG."""
    template = _env().get_template("report.html.j2")
    return template.render(
        a=analysis, m=analysis.model, svg=diagram_svg(analysis.model),
        register=analysis.register(), groups=by_element(analysis),
        not_applicable=analysis.by_status("not_applicable"), status_text=_STATUS_TEXT,
        counts={s: len(analysis.by_status(s)) for s in STATUSES}, evidence=_evidence,
    )
