"""The data-flow diagram as Graphviz DOT, as Mermaid, and as SVG.

DOT and Mermaid are text and always produced. SVG/PNG come from Graphviz `dot` when it is on
PATH; otherwise `builtin_svg` draws a plain left-to-right layout (one column per top-level
trust boundary, nested boundaries as nested boxes) so the HTML report always has a picture.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from bastion.threatmodel.model import Boundary, Element, ThreatModel

_DOT_SHAPES = {"external_entity": "box", "process": "ellipse", "data_store": "cylinder"}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flow_label(flow: Element) -> str:
    a = flow.attrs
    auth = "" if a["authentication"] == "none" else f" [{a['authentication']}]"
    return f"{flow.name} ({a['protocol']}{auth})"


def _nested(
    model: ThreatModel,
    opening: Callable[[Boundary], list[str]],
    closing: str,
    node: Callable[[Element], str],
) -> list[str]:
    """Trust boundaries as nested blocks (`opening` lines, members indented, `closing`), each
    element inside its boundary, as DOT and Mermaid both write them."""
    lines: list[str] = []

    def emit(boundary: str | None, indent: str) -> None:
        for b in (b for b in model.boundaries if b.parent == boundary):
            lines.extend(indent + line for line in opening(b))
            emit(b.id, indent + "  ")
            lines.append(indent + closing)
        lines.extend(indent + node(e) for e in model.nodes if e.boundary == boundary)

    emit(None, "  ")
    return lines


def to_dot(model: ThreatModel) -> str:
    """Graphviz DOT: nested `cluster_` subgraphs for trust boundaries."""
    lines = [f"digraph {_q(model.name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    lines += _nested(
        model,
        lambda b: [f"subgraph {_q('cluster_' + b.id)} {{", f"  label={_q(b.name)}; style=dashed; color=red;"],
        "}",
        lambda e: f"{_q(e.id)} [label={_q(e.name)}, shape={_DOT_SHAPES[e.kind]}];",
    )
    for f in model.flows:
        style = "" if f.attrs["encrypted"] else ", style=dashed"
        lines.append(f"  {_q(f.attrs['from'])} -> {_q(f.attrs['to'])} "
                     f"[label={_q(flow_label(f))}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mid(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _mlabel(text: str) -> str:
    return text.replace('"', "'")


_MERMAID_SHAPES = {"external_entity": ('["', '"]'), "process": ('(("', '"))'), "data_store": ('[("', '")]')}


def _mermaid_node(e: Element) -> str:
    left, right = _MERMAID_SHAPES[e.kind]
    return f"{_mid(e.id)}{left}{_mlabel(e.name)}{right}"


def to_mermaid(model: ThreatModel) -> str:
    """Mermaid flowchart: subgraphs for trust boundaries."""
    lines = ["flowchart LR"]
    lines += _nested(model, lambda b: [f'subgraph {_mid("b_" + b.id)}["{_mlabel(b.name)}"]'], "end", _mermaid_node)
    for f in model.flows:
        arrow = "-->" if f.attrs["encrypted"] else "-.->"
        lines.append(f'  {_mid(f.attrs["from"])} {arrow}|"{_mlabel(flow_label(f))}"| '
                     f"{_mid(f.attrs['to'])}")
    return "\n".join(lines) + "\n"


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render_with_graphviz(dot_text: str, fmt: str) -> bytes:
    """Run Graphviz `dot -T<fmt>`; callers check `graphviz_available()` first."""
    exe = shutil.which("dot")
    if exe is None or fmt not in ("svg", "png"):
        raise RuntimeError("Graphviz `dot` is not on PATH" if exe is None else f"bad format {fmt}")
    done = subprocess.run(  # noqa: S603 - the resolved Graphviz binary, fixed arguments
        [exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, check=True, timeout=120,
    )
    return done.stdout


# -- built-in SVG layout ------------------------------------------------------------------
_W, _H, _GAP, _PAD, _TITLE = 180, 46, 28, 14, 22
_ARC = 60  # how far above the drawing arcs between non-adjacent columns may rise


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float


def builtin_svg(model: ThreatModel) -> str:
    """A dependency-free SVG drawing of the DFD."""
    nodes: dict[str, _Box] = {}
    shapes: list[str] = []

    def size(boundary: str) -> tuple[float, float]:
        members = [e for e in model.nodes if e.boundary == boundary]
        children = [b for b in model.boundaries if b.parent == boundary]
        w: float = _W + 2 * _PAD
        h: float = _TITLE + _PAD
        h += len(members) * (_H + _GAP)
        for c in children:
            cw, ch = size(c.id)
            w, h = max(w, cw + 2 * _PAD), h + ch + _GAP
        return w, h

    def place(boundary: str | None, x: float, y: float, w: float) -> float:
        members = [e for e in model.nodes if e.boundary == boundary]
        for e in members:
            nodes[e.id] = _Box(x + (w - _W) / 2, y, _W, _H)
            y += _H + _GAP
        for c in (b for b in model.boundaries if b.parent == boundary):
            cw, ch = size(c.id)
            shapes.append(f'<rect x="{x + (w - cw) / 2}" y="{y}" width="{cw}" height="{ch}" '
                          'fill="none" stroke="#c0392b" stroke-dasharray="6 4" rx="8"/>'
                          f'<text x="{x + (w - cw) / 2 + 8}" y="{y + 15}" font-size="12" '
                          f'fill="#c0392b">{html.escape(c.name)}</text>')
            place(c.id, x + (w - cw) / 2 + _PAD, y + _TITLE, cw - 2 * _PAD)
            y += ch + _GAP
        return y

    x: float = 20.0
    height: float = 0.0
    columns: list[tuple[str | None, float]] = []
    if any(e.boundary is None for e in model.nodes):
        columns.append((None, _W + 2 * _PAD))
    columns += [(b.id, size(b.id)[0]) for b in model.boundaries if b.parent is None]
    spans: list[tuple[float, float]] = []
    for boundary, width in columns:
        spans.append((x, x + width))
        if boundary is None:
            bottom = place(None, x + _PAD, 40, _W)
        else:
            cw, ch = size(boundary)
            title = model.boundary(boundary).name
            shapes.append(f'<rect x="{x}" y="20" width="{cw}" height="{ch}" fill="none" '
                          'stroke="#c0392b" stroke-dasharray="6 4" rx="8"/>'
                          f'<text x="{x + 8}" y="36" font-size="12" fill="#c0392b">'
                          f"{html.escape(title)}</text>")
            bottom = place(boundary, x + _PAD, 20 + _TITLE, cw - 2 * _PAD)
        height = max(height, bottom)
        x += width + 90
    edges = []
    bend = 0
    for f in model.flows:
        a, b = nodes[f.attrs["from"]], nodes[f.attrs["to"]]
        dash = "" if f.attrs["encrypted"] else ' stroke-dasharray="4 3"'
        title = f"<title>{html.escape(flow_label(f))}</title>"
        if abs(a.x - b.x) < a.w:  # same column: a curve bulging to the right, one lane each
            bend += 1
            x1, y1, x2, y2 = a.x + a.w, a.y + a.h / 2, b.x + b.w, b.y + b.h / 2
            cx = max(x1, x2) + 25 + 18 * bend
            path = f"M {x1} {y1} C {cx} {y1} {cx} {y2} {x2} {y2}"
            lx, ly = cx - 6, (y1 + y2) / 2
        else:
            forward = b.x >= a.x
            x1, y1 = (a.x + a.w, a.y + a.h / 2) if forward else (a.x, a.y + a.h / 2)
            x2, y2 = (b.x, b.y + b.h / 2) if forward else (b.x + b.w, b.y + b.h / 2)
            low, high = min(x1, x2), max(x1, x2)
            if any(low < start and end < high for start, end in spans):
                # A column lies between the ends: arc over the top instead of through it.
                top = -_ARC
                path = f"M {x1} {y1} C {x1} {top} {x2} {top} {x2} {y2}"
                lx, ly = (x1 + x2) / 2, (y1 + y2) / 8 + 0.75 * top - 4
            else:
                path = f"M {x1} {y1} L {x2} {y2}"
                lx, ly = (x1 + x2) / 2, (y1 + y2) / 2 - 4
        edges.append(f'<path d="{path}" fill="none" stroke="#34495e"{dash} '
                     f'marker-end="url(#arrow)">{title}</path>'
                     f'<text x="{lx}" y="{ly}" font-size="10" text-anchor="middle" '
                     f'fill="#34495e">{html.escape(f.name)}</text>')
    x += 18 * bend
    boxes = []
    for e in model.nodes:
        n = nodes[e.id]
        label = (f'<text x="{n.x + n.w / 2}" y="{n.y + n.h / 2 + 4}" font-size="12" '
                 f'text-anchor="middle">{html.escape(e.name)}</text>')
        if e.kind == "process":
            shape = (f'<ellipse cx="{n.x + n.w / 2}" cy="{n.y + n.h / 2}" rx="{n.w / 2}" '
                     f'ry="{n.h / 2}" fill="#eaf2f8" stroke="#2471a3"/>')
        elif e.kind == "data_store":
            shape = (f'<rect x="{n.x}" y="{n.y}" width="{n.w}" height="{n.h}" fill="#fef9e7" '
                     f'stroke="#b7950b"/><line x1="{n.x}" y1="{n.y + 6}" x2="{n.x + n.w}" '
                     f'y2="{n.y + 6}" stroke="#b7950b"/>')
        else:
            shape = (f'<rect x="{n.x}" y="{n.y}" width="{n.w}" height="{n.h}" fill="#f4f6f6" '
                     'stroke="#424949"/>')
        boxes.append(shape + label)
    head = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
            'fill="#34495e"/></marker></defs>')
    body = (head + f'<g transform="translate(0,{_ARC})">' + "".join(shapes) + "".join(edges)
            + "".join(boxes) + "</g>")
    total = height + 20 + _ARC
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{x}" height="{total}" '
            f'viewBox="0 0 {x} {total}" font-family="Helvetica, Arial, sans-serif" '
            f'role="img" aria-label="Data-flow diagram of {html.escape(model.name)}">{body}</svg>')


def diagram_svg(model: ThreatModel) -> str:
    """Graphviz's SVG when `dot` is available, else the built-in layout."""
    if graphviz_available():
        svg = render_with_graphviz(to_dot(model), "svg").decode()
        return svg[svg.index("<svg"):]
    return builtin_svg(model)
