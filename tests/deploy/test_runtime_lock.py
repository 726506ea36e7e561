"""deploy/runtime_lock.py: the image installs the runtime part of requirements.lock, no less."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from deploy import runtime_lock
from tests._services import ROOT

LOCK = (ROOT / "requirements.lock").read_text()
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def pinned(text: str) -> set[str]:
    return set(runtime_lock.parse_lock(text))


def installed_closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """What pip installs for `name` on this Python: its requirements, markers evaluated, followed
    through the installed distributions' metadata."""
    seen: set[str] = set()
    todo = [(name, extras)]
    while todo:
        current, wanted = todo.pop()
        for line in importlib.metadata.requires(current) or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(e) for e in environments):
                continue
            dependency = runtime_lock.normalize(requirement.name)
            if dependency not in seen:
                seen.add(dependency)
                todo.append((dependency, frozenset(requirement.extras)))
    return seen


def test_runtime_part_holds_everything_the_installed_server_requires() -> None:
    """Every distribution `bastion` requires here (transitively, extras and markers applied) is
    in the runtime part."""
    runtime = pinned(runtime_lock.subset(LOCK, PYPROJECT, "runtime"))

    assert installed_closure("bastion") - runtime == set()


@pytest.mark.parametrize("tool", ["pytest", "mypy", "ruff", "playwright", "hypothesis", "schemathesis", "hatchling"])
def test_runtime_part_leaves_out_the_developer_tools(tool: str) -> None:
    """Test, lint and build tools of the lock are not installed in the image."""
    assert tool not in pinned(runtime_lock.subset(LOCK, PYPROJECT, "runtime"))


def test_build_part_is_the_build_backend_and_its_requirements() -> None:
    """The build stage gets hatchling and what it requires, nothing of the server."""
    build = pinned(runtime_lock.subset(LOCK, PYPROJECT, "build"))

    assert "hatchling" in build
    assert installed_closure("hatchling") - build == set()
    assert "starlette" not in build


@pytest.mark.parametrize("group", ["runtime", "build"])
def test_each_pin_is_copied_with_its_hashes(group: str) -> None:
    """Each chosen pin keeps its lines as the lock has them, hashes included (pip
    --require-hashes installs it)."""
    pins = runtime_lock.parse_lock(LOCK)
    text = runtime_lock.subset(LOCK, PYPROJECT, group)

    for name in pinned(text):
        block = "\n".join(pins[name].lines)
        assert block in text
        assert "--hash=sha256:" in block


def test_a_requirement_missing_from_the_lock_is_refused() -> None:
    """A dependency added to pyproject.toml but not to the lock names the fix."""
    pyproject = PYPROJECT.replace('dependencies = [\n', 'dependencies = [\n    "not-in-the-lock>=1",\n', 1)

    with pytest.raises(runtime_lock.LockError, match=r"^not pinned in requirements.lock: not-in-the-lock \(regen"):
        runtime_lock.subset(LOCK, pyproject, "runtime")


def test_command_line_writes_the_part_and_refuses_a_missing_file() -> None:
    """As the Containerfile runs it: the part on stdout; a missing lock is exit 2 and a message."""
    script = str(ROOT / "deploy" / "runtime_lock.py")
    ok = subprocess.run([sys.executable, script, "runtime"], capture_output=True, text=True, check=False)
    missing = ["--lock", str(ROOT / "no.lock")]
    bad = subprocess.run([sys.executable, script, "runtime", *missing], capture_output=True, text=True, check=False)

    assert ok.returncode == 0
    assert ok.stdout == runtime_lock.subset(LOCK, PYPROJECT, "runtime")
    assert bad.returncode == 2
    assert bad.stderr.startswith("runtime_lock: [Errno 2] No such file or directory")
