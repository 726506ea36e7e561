#!/usr/bin/env python3
"""Bootstrap and run Bastion from a fresh clone with nothing but Python 3.11+ and git.

    python3 dev.py serve [ARGS...]   start the authorization server (embedded default)
    python3 dev.py test  [ARGS...]   run the whole test suite
    python3 dev.py run CMD [ARGS...] run any command inside the project's virtual environment

The first call creates `.venv/` and installs `requirements.lock` (hash-pinned) into it; later
calls reinstall only when the lock file changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".bastion-lock-sha256"


def _bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script must explain itself on an older Python
        sys.exit("Bastion needs Python 3.11 or newer; this is " + sys.version.split()[0])
    if not _bin("python").exists():
        print("dev.py: creating .venv/ (first run only)", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("dev.py: installing requirements.lock into .venv/", file=sys.stderr)
    pip = [str(_bin("python")), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--require-hashes", "-r", str(LOCK)], check=True)  # noqa: S603 - fixed argv
    subprocess.run(  # noqa: S603 - fixed argv
        [*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True
    )
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "run"}:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        cmd = [str(_bin("bastion")), "serve", *rest]
    elif command == "test":
        cmd = [str(_bin("python")), "-m", "pytest", "-n", "auto", *rest]
    else:
        cmd = [str(_bin(rest[0])) if _bin(rest[0]).exists() else rest[0], *rest[1:]]
    os.chdir(ROOT)
    return subprocess.call(cmd)  # noqa: S603 - argv chosen by the developer


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
