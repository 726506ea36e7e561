"""Renderers: report formats (md, html, json, csv, sarif) and diagrams (dot, mermaid, svg)."""

from __future__ import annotations

from bastion.threatmodel.assess import Analysis
from bastion.threatmodel.render.diagram import (
    builtin_svg,
    diagram_svg,
    graphviz_available,
    render_with_graphviz,
    to_dot,
    to_mermaid,
)
from bastion.threatmodel.render.report import to_html, to_markdown
from bastion.threatmodel.render.sarif import to_sarif
from bastion.threatmodel.render.tabular import to_csv, to_json

FORMATS: tuple[str, ...] = ("html", "md", "json", "csv", "sarif", "dot", "mermaid", "svg", "png")


def render(analysis: Analysis, fmt: str) -> str | bytes:
    """Render in `fmt`; svg/png need Graphviz `dot` (RuntimeError without it)."""
    if fmt == "html":
        return to_html(analysis)
    if fmt == "md":
        return to_markdown(analysis)
    if fmt == "json":
        return to_json(analysis)
    if fmt == "csv":
        return to_csv(analysis)
    if fmt == "sarif":
        return to_sarif(analysis)
    if fmt == "dot":
        return to_dot(analysis.model)
    if fmt == "mermaid":
        return to_mermaid(analysis.model)
    if fmt in ("svg", "png"):
        return render_with_graphviz(to_dot(analysis.model), fmt)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


__all__ = [
    "FORMATS",
    "builtin_svg",
    "diagram_svg",
    "graphviz_available",
    "render",
    "render_with_graphviz",
    "to_csv",
    "to_dot",
    "to_html",
    "to_json",
    "to_markdown",
    "to_mermaid",
    "to_sarif",
]
