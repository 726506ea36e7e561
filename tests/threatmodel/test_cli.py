"""`bastion threats` commands: check, verify, diff, report, rules, init, and their exit codes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.threatmodel import Evidence, results_path, write_results
from tests.threatmodel.conftest import EXAMPLE, MINIMAL

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["threats", *[str(a) for a in args]])


def _write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# A model whose only threats sit in known bands: one open BOLA (critical) is what gates fail on.
@pytest.mark.parametrize(("fail_on", "code"), [
    pytest.param("critical", 1, id="critical-fails"),
    pytest.param("high", 1, id="high-fails"),
])
def test_check_fails_while_a_threat_at_or_above_the_band_is_open(tmp_path, fail_on, code) -> None:
    """check exits 1 and lists the open threats at or above --fail-on."""
    result = _run("check", _write(tmp_path, MINIMAL), "--fail-on", fail_on)
    assert result.exit_code == code
    assert "OPEN critical" in result.output
    assert "BT-E01@api.get-order" in result.output


def test_check_passes_when_everything_high_is_handled(tmp_path) -> None:
    """Accepting every open threat with a reason and owner turns the gate green."""
    text = MINIMAL + "threats:\n  - {id: '*', status: accepted, reason: demo, owner: me}\n"
    result = _run("check", _write(tmp_path, text), "--fail-on", "low")
    assert result.exit_code == 0
    assert result.output.startswith("OK: no open threat at or above low")


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("name: [", "YAML syntax error", id="yaml"),
    pytest.param("name: x\nprocesses: [{id: a, hardend: true}]\n",
                 "unknown key `hardend`", id="schema"),
])
def test_model_errors_exit_2_with_file_and_line(tmp_path, text, message) -> None:
    """A broken model is exit code 2 with file:line on stderr."""
    path = _write(tmp_path, text)
    result = _run("check", path, "--fail-on", "high")
    assert result.exit_code == 2
    assert f"error: {path}:" in result.output
    assert message in result.output


def _mitigated(tests: list[str]) -> str:
    return MINIMAL + (
        "threats:\n  - id: BT-E01@api.get-order\n    status: mitigated\n"
        "    mitigation: ownership check in the handler\n"
        f"    tests: {json.dumps(tests)}\n"
        "  - {id: '*', status: accepted, reason: not in this test, owner: me}\n")


PASS = f"{sys.executable} -c 'raise SystemExit(0)'"
FAIL = f"{sys.executable} -c 'raise SystemExit(3)'"


def test_verify_records_evidence_and_check_uses_it(tmp_path) -> None:
    """verify --allow-commands runs the named commands, writes pass/fail with date and commit,
    and a failing mitigation counts as open for check."""
    path = _write(tmp_path, _mitigated([PASS, FAIL]))
    result = _run("verify", path, "--allow-commands")
    assert result.exit_code == 1
    assert f"PASS  {PASS}" in result.output
    assert f"FAIL  {FAIL}" in result.output
    results = json.loads((tmp_path / "m.results.json").read_text())["results"]
    assert [(r["test"], r["passed"], r["returncode"]) for r in results] == sorted(
        [(PASS, True, 0), (FAIL, False, 3)])
    assert all(r["date"].endswith("+00:00") for r in results)
    assert all("commit" in r for r in results)
    gate = _run("check", path, "--fail-on", "high")
    assert gate.exit_code == 1
    assert "BT-E01@api.get-order" in gate.output
    assert "[mitigation evidence is failing]" in gate.output


def test_passing_evidence_keeps_the_mitigation(tmp_path) -> None:
    """With all tests passing, the mitigated threat stays mitigated, the gate passes and the
    report shows the evidence."""
    path = _write(tmp_path, _mitigated([PASS]))
    assert _run("verify", path, "--allow-commands").exit_code == 0
    assert _run("check", path, "--fail-on", "high", "--require-evidence").exit_code == 0
    report = _run("report", path, "--format", "md").output
    assert f"  - Mitigation: ownership check in the handler; evidence: pass {PASS} (" in report


def test_svg_without_graphviz_exits_2(tmp_path) -> None:
    """--format svg without Graphviz is a usage error that names the alternatives."""
    if shutil.which("dot") is not None:
        pytest.skip("Graphviz `dot` is installed")
    result = _run("report", EXAMPLE, "--format", "svg", "-o", tmp_path / "x.svg")
    assert result.exit_code == 2
    assert "use --format dot or mermaid, or install graphviz" in result.output


def test_require_evidence_counts_unverified_mitigations_as_open(tmp_path) -> None:
    """Without a results file, --require-evidence turns the mitigation back into an open threat."""
    path = _write(tmp_path, _mitigated([PASS]))
    assert _run("check", path, "--fail-on", "high").exit_code == 0
    result = _run("check", path, "--fail-on", "high", "--require-evidence")
    assert result.exit_code == 1
    assert "[mitigation has no passing evidence]" in result.output


def test_verify_runs_pytest_node_ids(tmp_path, monkeypatch) -> None:
    """A pytest node id is run with pytest in the model's verify.cwd."""
    # The probe needs no plugins; skipping their import keeps the nested pytest quick.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    (tmp_path / "test_probe.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    path = _write(tmp_path, _mitigated(["test_probe.py::test_ok"]) + "verify: {cwd: .}\n")
    result = _run("verify", path)
    assert result.exit_code == 0, result.output
    assert "PASS  test_probe.py::test_ok" in result.output


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   cwd=cwd, check=True, capture_output=True)


def test_new_since_gates_only_threats_added_after_the_revision(tmp_path) -> None:
    """--new-since REV ignores threats the model already had at REV and fails on new ones."""
    _git(tmp_path, "init", "-q")
    path = _write(tmp_path, MINIMAL)
    _git(tmp_path, "add", "m.yaml")
    _git(tmp_path, "commit", "-q", "-m", "base")
    assert _run("check", path, "--fail-on", "high", "--new-since", "HEAD").exit_code == 0
    path.write_text(MINIMAL.replace("processes:\n", "processes:\n  - {id: worker, boundary: cloud}\n"
                                    ).replace("flows:\n", "flows:\n  - {id: api-worker, from: api, "
                                              "to: worker, protocol: http}\n"))
    result = _run("check", path, "--fail-on", "high", "--new-since", "HEAD")
    assert result.exit_code == 1
    assert "introduced since HEAD" in result.output
    assert "@worker" in result.output
    assert "@api.get-order" not in result.output


def test_new_since_unknown_revision_is_an_error(tmp_path) -> None:
    """An unknown revision is exit 2, not a silent pass."""
    _git(tmp_path, "init", "-q")
    result = _run("check", _write(tmp_path, MINIMAL), "--fail-on", "high", "--new-since", "nope")
    assert result.exit_code == 2
    assert "unknown git revision `nope`" in result.output


def test_diff_lists_added_removed_and_rescored(tmp_path) -> None:
    """diff OLD NEW reports threats added, removed and re-scored between two models."""
    old = _write(tmp_path, MINIMAL, "old.yaml")
    new_text = MINIMAL.replace("to: api, protocol: https", "to: api, protocol: http").replace(
        "{id: orders, classification: confidential, pii: true}",
        "{id: orders, classification: restricted, pii: true}")
    new = _write(tmp_path, new_text, "new.yaml")
    result = _run("diff", old, new, "--format", "json")
    assert result.exit_code == 1  # the new model adds threats
    d = json.loads(result.output)
    assert "BT-T04@user-api" in {a["id"] for a in d["added"]}
    assert d["removed"] == []
    changed = {c["id"]: c for c in d["changed"]}
    assert changed["BT-E01@api.get-order"]["old_score"] < changed["BT-E01@api.get-order"]["new_score"]
    text = _run("diff", old, new)
    assert "+ BT-T04@user-api" in text.output
    assert "~ BT-E01@api.get-order" in text.output


def test_diff_of_identical_models_is_empty(tmp_path) -> None:
    """Comparing a model with itself reports nothing."""
    path = _write(tmp_path, MINIMAL)
    assert _run("diff", path, path).output == "0 added, 0 removed, 0 changed\n"


def test_rules_lists_the_library() -> None:
    """rules prints one line per rule and the count."""
    result = _run("rules")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "84 rules"
    assert any(line.startswith("BT-E01   E endpoint") for line in result.output.splitlines())


def test_init_writes_a_starter_that_loads(tmp_path) -> None:
    """init writes a commented model that itself analyses cleanly, and refuses to overwrite."""
    path = tmp_path / "threatmodel.yaml"
    assert _run("init", path).exit_code == 0
    assert path.read_text().startswith("# Threat model (bastion threats).")
    assert _run("report", path, "--format", "json").exit_code == 0
    assert _run("init", path).exit_code == 2


@pytest.mark.parametrize(("fmt", "start"), [
    pytest.param("html", "<!doctype html>", id="html"),
    pytest.param("md", "# Threat model: Shop API", id="md"),
    pytest.param("json", "{", id="json"),
    pytest.param("csv", "id,rule,title,stride,element", id="csv"),
    pytest.param("sarif", "{", id="sarif"),
    pytest.param("dot", 'digraph "Shop API" {', id="dot"),
    pytest.param("mermaid", "flowchart LR", id="mermaid"),
])
def test_report_writes_each_format(tmp_path, fmt, start) -> None:
    """report --format F -o FILE writes that format."""
    out = tmp_path / f"report.{fmt}"
    result = _run("report", EXAMPLE, "--format", fmt, "-o", out)
    assert result.exit_code == 0
    assert out.read_text().startswith(start)


def test_user_rule_library_from_the_command_line() -> None:
    """--rules adds a user library: listed by `rules` and applied by `check`."""
    acme = EXAMPLE.parent / "acme-rules.yaml"
    listed = _run("rules", "--rules", acme)
    assert listed.output.splitlines()[-1] == "86 rules"
    result = _run("check", EXAMPLE, "--fail-on", "high", "--rules", acme)
    assert result.exit_code == 1
    assert "ACME-E01@orders-service.cancel-any-order" in result.output
    assert "ACME-I01@" not in result.output  # the example sends no personal data to third parties


@pytest.mark.parametrize(("age_days", "code"), [
    pytest.param(1, 0, id="fresh-evidence-passes"),
    pytest.param(40, 1, id="stale-evidence-is-no-evidence"),
])
def test_max_evidence_age_ignores_stale_evidence(tmp_path, age_days, code) -> None:
    """--max-evidence-age DAYS counts a mitigation whose last passing run is older as open."""
    path = _write(tmp_path, _mitigated([PASS]))
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days)
    write_results(results_path(path), [Evidence(PASS, True, 0, when.isoformat(), None)])
    result = _run("check", path, "--fail-on", "high", "--max-evidence-age", "30")
    assert result.exit_code == code
