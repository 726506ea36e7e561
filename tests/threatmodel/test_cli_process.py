"""`bastion threats` as a CI job runs it, in real processes (issue 14, item 14): `diff` exits 1
when the new model adds threats, `verify` names a test that does not exist, the shipped example's
evidence exists and passes, and `report --help` says svg and png need Graphviz."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli._run import bastion
from tests.threatmodel.conftest import EXAMPLE, MINIMAL

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _more_threats() -> str:
    return MINIMAL.replace("to: api, protocol: https", "to: api, protocol: http")


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        pytest.param(MINIMAL, MINIMAL, 0, id="same-model"),
        pytest.param(MINIMAL, _more_threats(), 1, id="threats-added"),
        pytest.param(_more_threats(), MINIMAL, 0, id="threats-removed-only"),
    ],
)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_diff_exits_1_when_the_new_model_adds_threats(tmp_path, old, new, code, fmt) -> None:
    """diff: 0 when nothing is added, 1 when NEW adds a threat, in either output format."""
    result = bastion("threats", "diff", str(_write(tmp_path, old, "old.yaml")), str(_write(tmp_path, new, "new.yaml")),
                     "--format", fmt)  # fmt: skip
    assert result.returncode == code, result.stderr


def test_diff_of_a_broken_model_exits_2(tmp_path) -> None:
    """A model that does not parse is exit 2, never read as "threats added"."""
    result = bastion("threats", "diff", str(_write(tmp_path, "name: [", "old.yaml")), str(_write(tmp_path, MINIMAL)))
    assert result.returncode == 2
    assert "YAML syntax error" in result.stderr


def _mitigated(tests: list[str]) -> str:
    return MINIMAL + (
        "verify: {cwd: .}\n"
        "threats:\n  - id: BT-E01@api.get-order\n    status: mitigated\n"
        "    mitigation: ownership check in the handler\n"
        f"    tests: {json.dumps(tests)}\n"
        "  - {id: '*', status: accepted, reason: not in this test, owner: me}\n"
    )


def test_verify_names_a_test_that_does_not_exist(tmp_path) -> None:
    """A node id naming no test (pytest's exit 4) is "test not found: NAME", exit 1; a failing
    test is still a plain FAIL."""
    (tmp_path / "test_probe.py").write_text("def test_ok():\n    pass\n\ndef test_bad():\n    raise AssertionError\n")
    tests = ["test_probe.py::test_ok", "test_probe.py::test_gone", "test_absent.py::test_x", "test_probe.py::test_bad"]
    result = bastion("threats", "verify", str(_write(tmp_path, _mitigated(tests))), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "PASS  test_probe.py::test_ok" in lines
    assert "FAIL  test_probe.py::test_bad" in lines
    assert "FAIL  test not found: test_probe.py::test_gone" in lines
    assert "FAIL  test not found: test_absent.py::test_x" in lines
    assert lines[-1] == "1 passed, 3 failed (2 not found)"


def test_the_shipped_example_evidence_exists_and_passes(tmp_path) -> None:
    """`verify` of the shop example (a copy) runs the test its mitigation names: it exists and passes."""
    copy = tmp_path / "example"
    shutil.copytree(EXAMPLE.parent, copy, ignore=shutil.ignore_patterns("*.results.json", "__pycache__"))
    result = bastion("threats", "verify", str(copy / EXAMPLE.name))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "PASS  tests/test_orders_policy.py::test_every_route_requires_a_scope",
        "1 passed, 0 failed",
    ]


def test_report_help_says_svg_and_png_need_graphviz() -> None:
    """`report --help` names Graphviz for svg and png, and the formats that do without it."""
    result = bastion("threats", "report", "--help", COLUMNS="200")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "svg and png need Graphviz" in text
    assert "dot and mermaid do not" in text
