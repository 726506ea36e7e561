"""The file and git side: load a model and its rule libraries, read an old revision of it.

Everything else in the package works on text and data; this module is where paths, the
results file beside the model and `git show REV:path` come in.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bastion.threatmodel._errors import Problem, ThreatModelError
from bastion.threatmodel._schema import parse_model
from bastion.threatmodel._yamlsrc import load_located, read_source
from bastion.threatmodel.assess import Analysis, analyse
from bastion.threatmodel.edgepolicy import include_edge_policies
from bastion.threatmodel.evidence import (
    Evidence,
    fresh,
    git_commit,
    is_pytest_node,
    read_results,
    results_path,
    run_test,
    write_results,
)
from bastion.threatmodel.model import ThreatModel
from bastion.threatmodel.rules import Rule, load_library


def parse_model_text(text: str, file: str) -> ThreatModel:
    """Validate model text; errors name `file` and the line. Edge policies it names are read
    relative to `file`."""
    return include_edge_policies(parse_model(load_located(text, file)))


def load_model(path: str | Path) -> ThreatModel:
    return parse_model_text(read_source(path, "model"), str(path))


def rules_for(model: ThreatModel, extra: Sequence[str | Path] = ()) -> tuple[Rule, ...]:
    """The shipped library plus the model's own `rules:` files (relative to it) and `extra`."""
    base = Path(model.file).parent
    files: list[str | Path] = [base / f for f in model.rule_files]
    files += list(extra)
    for f in files:
        if not Path(f).is_file():
            raise ThreatModelError([Problem(model.file, 1, f"rule file {f} does not exist",
                                            "fix the path under `rules:`")])
    return load_library(files)


def analyse_file(path: str | Path, extra_rules: Sequence[str | Path] = (), *,
                 require_evidence: bool = False, max_evidence_age_days: int | None = None,
                 now: dt.datetime | None = None) -> Analysis:
    """Load, identify, score and apply evidence from the results file beside the model.

    With `max_evidence_age_days`, evidence older than that is ignored and evidence is required.
    """
    model = load_model(path)
    results = read_results(results_path(path))
    if max_evidence_age_days is not None:
        results = fresh(results, max_evidence_age_days, now or dt.datetime.now(dt.UTC))
        require_evidence = True
    return analyse(model, rules_for(model, extra_rules), results,
                   require_evidence=require_evidence)


def git_show(path: str | Path, rev: str) -> str | None:
    """The text of `path` at git revision `rev`, or None when it did not exist there."""
    path = Path(path).resolve()
    cwd = path.parent

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed argv, no shell; rev is passed as one argument
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60,  # noqa: S607 - git from PATH
        )

    top = git("rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise ThreatModelError([Problem(str(path), 1, "--new-since needs a git repository",
                                        "run inside a git work tree")])
    if git("rev-parse", "--verify", "--quiet", rev + "^{commit}").returncode != 0:
        raise ThreatModelError([Problem(str(path), 1, f"unknown git revision `{rev}`",
                                        "pass a commit, branch or tag that exists")])
    rel = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    shown = git("show", f"{rev}:{rel}")
    return shown.stdout if shown.returncode == 0 else None


def default_cwd(model: ThreatModel) -> Path:
    """Where tests run: the model's `verify.cwd`, else the git work tree, else its folder."""
    folder = Path(model.file).resolve().parent
    if model.verify_cwd:
        return (folder / model.verify_cwd).resolve()
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True,  # noqa: S607 - git from PATH
        check=False, timeout=60,
    )
    return Path(top.stdout.strip()) if top.returncode == 0 else folder


def verify(path: str | Path, *, allow_commands: bool = False) -> list[Evidence]:
    """Run every test named by a mitigation once and write the results file beside the model.

    Raises:
        ThreatModelError: a mitigation names a command rather than a pytest node id and
            `allow_commands` is False (nothing has run).
    """
    model = load_model(path)
    if not allow_commands:
        commands = [Problem(model.file, entry.line, f"`{t}` is a command, not a pytest node id",
                            "name a test as path.py::test, or pass --allow-commands for a model you trust")
                    for entry in model.threats for t in entry.tests if not is_pytest_node(t)]
        if commands:
            raise ThreatModelError(commands)
    tests = sorted({t for entry in model.threats for t in entry.tests})
    cwd = default_cwd(model)
    commit = git_commit(cwd)
    evidence = [run_test(t, cwd, commit) for t in tests]
    old = read_results(results_path(path))
    old.update({e.test: e for e in evidence})
    write_results(results_path(path), old.values())
    return evidence
