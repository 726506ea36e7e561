"""Fixtures for the interop tests: the npm peers in tests/node."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._services import need_node_package


@pytest.fixture
def node_dir() -> Path:
    """tests/node, where `jose` is installed (skips, or fails under BASTION_REQUIRE_SERVICES=1)."""
    return need_node_package("jose")
