"""The 60-second soak: bench/soak.py's engine on the production configuration (a private
PostgreSQL and redis-server, production mode) at 70% of the capacity it measures first.

It takes about a minute and a half; deselect it with `-k "not soak"` (or
`--deselect tests/server/test_soak.py`) where that matters. The 10-minute soak is the bench:
`python3 dev.py run python bench/soak.py`.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests._services import missing

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.redis, pytest.mark.npm]

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _soak_module() -> ModuleType:
    for tool, how in (
        ("node", "install Node.js 20+ (Debian: nodejs npm)"),
        ("npm", "install npm (Debian: npm)"),
        ("redis-server", "install redis-server (Debian: redis-server)"),
        ("runuser", "install util-linux (runuser starts the private PostgreSQL as `postgres`)"),
    ):
        if shutil.which(tool) is None:
            missing(tool, how)
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        missing("PostgreSQL 15 binaries", "install postgresql-15 (the soak starts a private cluster)")
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("soak")


def test_sixty_second_soak_has_no_5xx_and_no_rss_growth() -> None:
    """Sixty seconds of mixed traffic (grants, exchanges, refreshes, introspection, userinfo,
    logins) at 70% of capacity: no 5xx, and Bastion's RSS grows at most 20% from the first
    ten-second interval to the last."""
    soak = _soak_module()
    lines: list[str] = []
    report = soak.run_soak(60, interval=10, capacity_seconds=6, users=1, browsers=4, out=lines.append)
    text = "\n".join(lines)
    assert report.intervals, text
    assert report.total_5xx == 0, text
    assert report.rss_growth <= soak.RSS_GROWTH_LIMIT, text
    assert sum(i.ops_per_s for i in report.intervals) > 0, text
