"""`bastion threats` on a model from an untrusted pull request, through the real CLI: hostile YAML
is exit 2 with a clear message (never a hang, a memory blow-up or a traceback's exit 1, which the
gate reads as "open threats"), and `verify` runs only pytest node ids unless told otherwise."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.cli._run import bastion
from tests.threatmodel.conftest import MINIMAL

ALIASES = "YAML aliases (*name) are not supported (fix: write the value out instead of referring to an anchor)"


def _bomb(levels: int) -> str:
    """A "billion laughs": each level names the previous one eight times (7 levels: 8**8 strings)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 8)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(_bomb(7), f"m.yaml:2: {ALIASES}", id="alias-bomb"),
        pytest.param("name: &x [*x]\n", f"m.yaml:1: {ALIASES}", id="self-referencing-alias"),
        pytest.param("name: x\nd: &d {a: 1}\ne: *d\n", f"m.yaml:3: {ALIASES}", id="plain-alias"),
        pytest.param("name: " + "[" * 60 + "]" * 60 + "\n",
                     "m.yaml:1: YAML nested more than 50 levels deep (fix: flatten the document)", id="deep"),
        pytest.param("name: " + "[" * 100_000 + "]" * 100_000 + "\n",
                     "m.yaml:1: YAML syntax error: exceeded maximum nesting depth", id="very-deep"),
        pytest.param(b"name: \xff\xfe\n", "m.yaml:1: the model is not UTF-8 text (invalid start byte)", id="not-utf8"),
    ],
)
def test_hostile_yaml_is_exit_2_with_the_reason(tmp_path: Path, text: str | bytes, message: str) -> None:
    """A model that would expand without bound, recurse, nest too deep or not decode is refused with exit 2."""
    path = tmp_path / "m.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)

    result = bastion("threats", "check", str(path), timeout=30)

    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path.parent}/{message}"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def _model(tmp_path: Path, tests: list[str]) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(
        MINIMAL
        + "threats:\n  - id: BT-E01@api.get-order\n    status: mitigated\n"
        + "    mitigation: ownership check in the handler\n"
        + f"    tests: {json.dumps(tests)}\n"
        + "  - {id: '*', status: accepted, reason: not in this test, owner: me}\n"
        + "verify: {cwd: .}\n"
    )
    return path


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(f"{sys.executable} -c \"open('pwned', 'w').close()\"", id="command-line"),
        pytest.param("touch pwned", id="shell-word"),
        pytest.param("-pconftest_evil.py", id="pytest-option-not-a-node-id"),
    ],
)
def test_verify_runs_no_command_without_allow_commands(tmp_path: Path, command: str) -> None:
    """A mitigation naming a command line is refused (exit 2, nothing run) unless --allow-commands is given."""
    path = _model(tmp_path, [command])

    result = bastion("threats", "verify", str(path), timeout=60)

    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == (
        f"error: {path}:24: `{command}` is a command, not a pytest node id "
        "(fix: name a test as path.py::test, or pass --allow-commands for a model you trust)\n"
    )
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "m.results.json").exists()


def test_allow_commands_runs_a_trusted_models_commands(tmp_path: Path) -> None:
    """With --allow-commands the model's command lines run and their outcome is recorded."""
    command = f"{sys.executable} -c \"open('ran', 'w').close()\""
    path = _model(tmp_path, [command])

    result = bastion("threats", "verify", str(path), "--allow-commands", timeout=60)

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout == f"PASS  {command}\n1 passed, 0 failed\n"
    assert (tmp_path / "ran").exists()


def test_verify_runs_pytest_node_ids_with_this_pythons_pytest(tmp_path: Path) -> None:
    """A node id runs without --allow-commands, through the current interpreter's pytest."""
    (tmp_path / "test_probe.py").write_text(
        "import sys\n\ndef test_interpreter():\n"
        f"    assert sys.executable == {sys.executable!r}\n"
    )
    path = _model(tmp_path, ["test_probe.py::test_interpreter"])

    result = bastion("threats", "verify", str(path), timeout=120, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout == "PASS  test_probe.py::test_interpreter\n1 passed, 0 failed\n"
