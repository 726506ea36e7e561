"""Bastion's own threat model: it passes the CI gate and its evidence points at real tests."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.threatmodel import analyse_file, load_model
from bastion.threatmodel.evidence import is_pytest_node
from tests.threatmodel.conftest import BASTION_MODEL, ROOT


def test_bastion_model_passes_the_ci_gate() -> None:
    """`bastion threats check threatmodel/bastion.yaml --fail-on high` exits 0 (as in .ci/run)."""
    result = CliRunner().invoke(app, ["threats", "check", str(BASTION_MODEL), "--fail-on", "high"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: no open threat at or above high")


def test_bastion_model_covers_the_components() -> None:
    """The model has the server, the guard, the demo API, the stores and the outside parties."""
    ids = {e.id for e in load_model(BASTION_MODEL).elements}
    assert {"auth-server", "guard", "demo-api", "database", "redis", "browser", "client-app",
            "resource-server"} <= ids


def _named_tests() -> list[str]:
    return sorted({t for entry in load_model(BASTION_MODEL).threats for t in entry.tests})


@pytest.mark.parametrize("node", _named_tests())
def test_every_named_test_exists(node: str) -> None:
    """Each pytest node id a mitigation names is a test function in an existing file."""
    assert is_pytest_node(node)
    path, _, name = node.partition("::")
    source = (ROOT / path).read_text()
    assert re.search(rf"^(async )?def {re.escape(name)}\(", source, re.MULTILINE), node


def test_every_accepted_threat_has_reason_and_owner() -> None:
    """Accepted threats in Bastion's model are backlog with an owner, never a silent waiver."""
    accepted = analyse_file(BASTION_MODEL).by_status("accepted")
    assert accepted
    assert all(a.reason and a.owner for a in accepted)
