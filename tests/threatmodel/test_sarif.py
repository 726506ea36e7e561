"""SARIF 2.1.0 output: valid against the OASIS schema, every rule listed, suppressions."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from bastion.threatmodel import analyse_file
from bastion.threatmodel.render import to_sarif
from tests.threatmodel.conftest import EXAMPLE

SCHEMA = json.loads((Path(__file__).parent / "sarif" / "sarif-schema-2.1.0.json").read_text())


@pytest.fixture(scope="module")
def analysis():
    return analyse_file(EXAMPLE)


@pytest.fixture(scope="module")
def log(analysis):
    return json.loads(to_sarif(analysis))


def test_sarif_validates_against_the_oasis_schema(log) -> None:
    """The log is valid SARIF 2.1.0 (OASIS JSON schema, draft-07)."""
    jsonschema.Draft7Validator(SCHEMA).validate(log)
    assert log["version"] == "2.1.0"


def test_every_library_rule_is_in_the_driver(log, analysis) -> None:
    """tool.driver.rules lists the whole library, and ruleIndex points into it."""
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.id for r in analysis.rules]
    for result in log["runs"][0]["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_results_cover_applicable_threats_with_suppressions(log, analysis) -> None:
    """Open threats are plain results; mitigated and accepted ones carry a suppression."""
    results = {r["partialFingerprints"]["threatId/v1"]: r for r in log["runs"][0]["results"]}
    assert set(results) == {a.id for a in analysis.register()}
    assert "suppressions" not in results["BT-E01@users-service.get-user"]
    assert results["BT-D09@database"]["suppressions"] == [{
        "kind": "external", "state": "accepted",
        "justification": "Managed PostgreSQL with provider snapshots every hour; restore tested "
                         "quarterly. (owner: platform-team)"}]
    assert results["BT-E01@orders-service.get-order"]["suppressions"][0]["justification"] == (
        "declared in the model: the endpoint checks that the caller may access each object id")


def test_results_point_at_the_element_line(log) -> None:
    """Each result is located at the element's line in the model file."""
    text = EXAMPLE.read_text().splitlines()
    result = next(r for r in log["runs"][0]["results"]
                  if r["partialFingerprints"]["threatId/v1"] == "BT-S11@support")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("examples/threatmodel/shop-api.yaml")
    assert text[location["region"]["startLine"] - 1].strip() == "- id: support"
    assert (result["level"], result["properties"]["security-severity"]) == ("error", "7.8")
