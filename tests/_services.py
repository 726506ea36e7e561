"""Finding the real services the tests use, and skipping (or failing) when one is missing.

Locally a test whose service, browser or npm package is missing skips with a message saying
what to install; with BASTION_REQUIRE_SERVICES=1 (set by .ci/run) it fails instead.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BASTION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("BASTION_TEST_CHROMIUM", "/usr/bin/chromium")
NODE_DIR = ROOT / "tests" / "node"


def required() -> bool:
    return os.environ.get("BASTION_REQUIRE_SERVICES") == "1"


def missing(what: str, how: str) -> None:
    """Skip the current test, or fail it when services are required."""
    message = f"{what} is not available: {how}"
    if required():
        pytest.fail(message + " (BASTION_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 1):
            return True
    except OSError:
        return False


def need_postgres() -> str:
    if not reachable(POSTGRES_URL, 5432):
        missing("PostgreSQL", f"start it or set BASTION_TEST_POSTGRES_URL (tried {POSTGRES_URL})")
    return POSTGRES_URL


def need_redis() -> str:
    if not reachable(REDIS_URL, 6379):
        missing("Redis", f"start redis-server or set BASTION_TEST_REDIS_URL (tried {REDIS_URL})")
    return REDIS_URL


def need_chromium() -> str:
    if not Path(CHROMIUM).exists():
        missing("Chromium", "install Debian's chromium package (apt-get install chromium)")
    return CHROMIUM


def need_node_package(name: str) -> Path:
    """The tests' npm packages live in tests/node (installed by `npm ci` there)."""
    if shutil.which("node") is None:
        missing("Node.js", "install Node.js 20+")
    package = NODE_DIR / "node_modules" / name
    if not package.exists():
        missing(f"npm package {name}", "run `npm ci --prefix tests/node`")
    return NODE_DIR
