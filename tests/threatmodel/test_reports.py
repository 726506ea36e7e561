"""Report and diagram renderings: Markdown, JSON, CSV, DOT, Mermaid and SVG."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from bastion.threatmodel import analyse_file
from bastion.threatmodel.render import (
    builtin_svg,
    render,
    to_csv,
    to_dot,
    to_json,
    to_markdown,
    to_mermaid,
)
from bastion.threatmodel.render.tabular import CSV_COLUMNS
from tests.threatmodel.conftest import EXAMPLE


@pytest.fixture(scope="module")
def analysis():
    return analyse_file(EXAMPLE)


def test_json_separates_the_four_outcomes(analysis) -> None:
    """The JSON summary counts each outcome and every threat carries its status and score."""
    doc = json.loads(to_json(analysis))
    assert doc["summary"] == {"open": 40, "mitigated": 56, "accepted": 2, "not_applicable": 270}
    bola = next(t for t in doc["threats"] if t["id"] == "BT-E01@users-service.get-user")
    assert (bola["status"], bola["owasp_api"], bola["cwe"], bola["band"]) == (
        "open", "API1:2023", [639], "critical")


def test_csv_is_the_sorted_register(analysis) -> None:
    """CSV has the documented columns and lists applicable threats by descending risk."""
    rows = list(csv.DictReader(io.StringIO(to_csv(analysis))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(analysis.register())
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_markdown_has_the_six_steps(analysis) -> None:
    """Markdown shows objectives, assumptions, a Mermaid DFD, the register and per-element threats."""
    text = to_markdown(analysis)
    for heading in ("## 1. Objectives and assets", "## 2. Assumptions", "## 3. Data-flow diagram",
                    "## 4-5. Risk register (DREAD, highest first)", "## Threats per element"):
        assert heading in text
    assert "```mermaid\nflowchart LR" in text
    assert "| BT-E01 Broken object level authorization (BOLA) | Elevation of privilege | " \
           "users-service.get-user | 8.0 | critical | applies and open | API1:2023 |" in text


def test_dot_nests_boundaries_and_dashes_plaintext(analysis) -> None:
    """DOT has a cluster per boundary (nested) and dashed edges for unencrypted flows."""
    dot = to_dot(analysis.model)
    assert 'subgraph "cluster_cloud" {' in dot
    assert dot.index('subgraph "cluster_private"') < dot.index('subgraph "cluster_data"')
    assert '"gateway" -> "orders-service" [label="orders API (http [bearer_token])", style=dashed];' in dot


def test_mermaid_uses_subgraphs_and_shapes(analysis) -> None:
    """Mermaid marks boundaries as subgraphs, stores as cylinders, plaintext flows as dotted."""
    text = to_mermaid(analysis.model)
    assert 'subgraph b_data["Data subnet"]' in text
    assert 'database[("PostgreSQL")]' in text
    assert 'gateway -.->|"orders API (http [bearer_token])"| orders_service' in text


def test_builtin_svg_draws_every_element(analysis) -> None:
    """Without Graphviz the built-in SVG still shows every element and flow."""
    svg = builtin_svg(analysis.model)
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    for element in analysis.model.elements:
        assert f">{element.name}<" in svg


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_graphviz_renders_svg(analysis) -> None:
    """With Graphviz on PATH, --format svg is dot's rendering of the DOT text."""
    svg = render(analysis, "svg")
    assert isinstance(svg, bytes)
    assert b"<svg" in svg


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz `dot` is installed")
def test_svg_without_graphviz_is_a_clear_error(analysis) -> None:
    """Without Graphviz, --format svg/png refuses with a message instead of a broken file."""
    with pytest.raises(RuntimeError, match="Graphviz `dot` is not on PATH"):
        render(analysis, "svg")
