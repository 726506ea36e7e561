"""Evidence for mitigations (step 6, validate): run the tests a mitigation names, record results.

A test is a pytest node id (`tests/x/test_y.py::test_z`) or any command line. A model can come
from an untrusted pull request, so only node ids run by default (with this Python's pytest,
never through a shell); a command line runs only when the caller allows commands (`bastion
threats verify --allow-commands`), as running it is running the model author's code. `verify`
runs each once and writes `<model>.results.json` beside the model with pass/fail, the UTC date and the
git commit. The parsing and the decision "is this mitigation proven?" are pure functions; the
runner is the thin I/O layer.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from bastion.threatmodel._errors import Problem, ThreatModelError

TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Evidence:
    """The last recorded outcome of one test."""

    test: str
    passed: bool
    returncode: int
    date: str
    commit: str | None


def results_path(model_file: str | Path) -> Path:
    """`threatmodel/bastion.yaml` -> `threatmodel/bastion.results.json`."""
    path = Path(model_file)
    return path.with_name(path.stem + ".results.json")


def read_results(path: Path) -> dict[str, Evidence]:
    """Read a results file; a missing file means no evidence yet."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
        return {e["test"]: Evidence(**e) for e in data["results"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ThreatModelError([Problem(str(path), 1, f"unreadable results file: {exc}",
                                        "delete it and run `bastion threats verify` again")]) from exc


def write_results(path: Path, evidence: Iterable[Evidence]) -> None:
    items = sorted(evidence, key=lambda e: e.test)
    text = json.dumps({"version": 1, "results": [asdict(e) for e in items]}, indent=2)
    path.write_text(text + "\n", "utf-8")


def fresh(results: dict[str, Evidence], max_age_days: int, now: dt.datetime) -> dict[str, Evidence]:
    """Only the evidence recorded within `max_age_days` of `now` (stale proof proves nothing)."""
    cutoff = now - dt.timedelta(days=max_age_days)
    return {t: e for t, e in results.items() if dt.datetime.fromisoformat(e.date) >= cutoff}


def is_pytest_node(test: str) -> bool:
    """A pytest node id or test file, as opposed to an arbitrary command (an option such as
    `-pplugin.py` is not a node id: pytest would read it as an option)."""
    head = test.split("::", 1)[0]
    return " " not in head and head.endswith(".py") and not test.startswith("-")


# pytest's exit status for a node id it cannot find (a usage error: no such file or test), and a
# shell's for a command that does not exist.
PYTEST_NOT_FOUND = 4
COMMAND_NOT_FOUND = 127


def not_found(evidence: Evidence) -> bool:
    """The test (or command) does not exist, as opposed to having run and failed."""
    if is_pytest_node(evidence.test):
        return evidence.returncode == PYTEST_NOT_FOUND
    return evidence.returncode == COMMAND_NOT_FOUND


def command_for(test: str) -> list[str]:
    if is_pytest_node(test):
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                test]
    return shlex.split(test)


def git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,  # noqa: S607 - git from PATH is the user's git
            check=False, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_test(test: str, cwd: Path, commit: str | None, now: dt.datetime | None = None) -> Evidence:
    """Run one test or command in `cwd`; exit status 0 is a pass."""
    try:
        done = subprocess.run(  # noqa: S603 - the model's author chose this command; no shell
            command_for(test), cwd=cwd, capture_output=True, check=False, timeout=TIMEOUT_SECONDS,
        )
        code = done.returncode
    except FileNotFoundError:
        code = 127
    except subprocess.TimeoutExpired:
        code = 124
    stamp = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    return Evidence(test=test, passed=code == 0, returncode=code, date=stamp, commit=commit)
