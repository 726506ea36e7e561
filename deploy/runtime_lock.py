"""The part of requirements.lock that one group of requirements needs, with its hashes.

requirements.lock pins everything a developer installs: the server's dependencies and the test
and lint tools. The container image must install only what the server runs (and, in its build
stage, what builds the wheel), still hash-checked. pip-compile writes, under each pin, the
packages that require it (`# via`); the closure of those edges from a group's roots is the
group. The roots come from pyproject.toml, so the subset can never drift from the lock:

    python3 deploy/runtime_lock.py runtime   > runtime.txt   # [project].dependencies
    python3 deploy/runtime_lock.py build     > build.txt     # [build-system].requires

An edge can make the subset larger than needed (a dependency only an extra used by a dev tool
asks for), never smaller; the image's build runs `pip check` to prove it complete. Only the
standard library is used: it runs on the bare base image.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
GROUPS = {"runtime": ("project", "dependencies"), "build": ("build-system", "requires")}


class LockError(Exception):
    """The lock file or pyproject.toml cannot give the asked group."""


@dataclass
class Pin:
    """One pinned package of the lock: its lines as written, and who requires it."""

    name: str
    lines: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def normalize(name: str) -> str:
    """PEP 503 normalized name: `Typing_Extensions` and `typing-extensions` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, Pin]:
    """Every pin of a pip-compile lock with the names in its `# via` comments."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in text.splitlines():
        pinned = PIN.match(line)
        if pinned:
            current = pins.setdefault(normalize(pinned.group(1)), Pin(normalize(pinned.group(1))))
        if current is None:
            continue
        current.lines.append(line)
        comment = line.strip().removeprefix("#").strip()
        if line.lstrip().startswith("#") and comment not in ("", "via"):
            required_by = NAME.match(comment.removeprefix("via").strip())
            if required_by and "(" not in comment and not comment.startswith("-"):
                current.via.add(normalize(required_by.group(1)))
    return pins


def roots(pyproject: str, group: str) -> set[str]:
    """The names a group of pyproject.toml requires directly (extras and versions dropped)."""
    table, key = GROUPS[group]
    requirements = tomllib.loads(pyproject).get(table, {}).get(key, [])
    names = set()
    for requirement in requirements:
        match = NAME.match(requirement)
        if match is None:
            raise LockError(f"pyproject.toml [{table}].{key}: cannot read {requirement!r}")
        names.add(normalize(match.group(1)))
    return names


def closure(pins: dict[str, Pin], start: set[str]) -> list[str]:
    """The roots and every pin that one of them requires, transitively, in lock order."""
    absent = sorted(start - pins.keys())
    if absent:
        raise LockError(f"not pinned in requirements.lock: {', '.join(absent)} (regenerate the lock)")
    chosen = set(start)
    grew = True
    while grew:
        grew = False
        for name, pin in pins.items():
            if name not in chosen and pin.via & chosen:
                chosen.add(name)
                grew = True
    return [name for name in pins if name in chosen]


def subset(lock: str, pyproject: str, group: str) -> str:
    """The lock's text for `group`: each chosen pin with its hashes and comments, as written."""
    pins = parse_lock(lock)
    chosen = closure(pins, roots(pyproject, group))
    header = f"# The {group} part of requirements.lock, derived by deploy/runtime_lock.py; do not edit.\n"
    return header + "".join("\n".join(pins[name].lines) + "\n" for name in chosen)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("group", choices=sorted(GROUPS))
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(subset(args.lock.read_text(), args.pyproject.read_text(), args.group))
    except (LockError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"runtime_lock: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
