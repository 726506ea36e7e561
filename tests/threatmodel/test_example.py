"""The shipped example (users, SPA, gateway, two services, a database): expected threats.

Each expected threat is asserted by rule id and element, with its status; the example is also
rendered as HTML and checked for the parts a reader follows.
"""

from __future__ import annotations

import re

import pytest

from bastion.threatmodel import analyse_file
from bastion.threatmodel.files import default_cwd, load_model
from bastion.threatmodel.render import to_html
from tests.threatmodel.conftest import EXAMPLE, ROOT, statuses

EXPECTED = [
    # API1 BOLA: the users service takes user ids without an ownership check; orders has one.
    ("BT-E01", "users-service.get-user", "open"),
    ("BT-E01", "orders-service.get-order", "mitigated"),
    # API3: whole profile objects returned; the PATCH binds the body without an allow-list.
    ("BT-I02", "users-service.get-user", "open"),
    ("BT-I02", "orders-service.get-order", "mitigated"),
    ("BT-T02", "orders-service.update-order", "open"),
    ("BT-T02", "users-service.avatar-from-url", "mitigated"),
    # API4: the gateway rate-limits, so endpoints behind it count as limited; no load shedding.
    ("BT-D01", "orders-service.get-order", "mitigated"),
    ("BT-D04", "gateway", "open"),
    ("BT-D02", "orders-service.list-orders", "mitigated"),
    # API5 BFLA: an admin endpoint that requires no role.
    ("BT-E02", "orders-service.cancel-any-order", "open"),
    # API7 SSRF through the avatar URL.
    ("BT-E05", "users-service.avatar-from-url", "open"),
    ("BT-E06", "users-service", "open"),
    # API9: covered by an OpenAPI pattern entry.
    ("BT-I08", "orders-service.get-order", "mitigated"),
    # Plain HTTP between gateway and orders: flow threats and per-interaction threats.
    ("BT-I05", "gateway-orders", "open"),
    ("BT-T04", "gateway-orders", "open"),
    ("BT-I13", "gateway-orders", "open"),
    ("BT-I14", "gateway-orders", "open"),
    # The TLS flows do not get them (suppressed by facts).
    ("BT-I05", "spa-gateway", "not_applicable"),
    ("BT-T04", "gateway-users", "not_applicable"),
    # Spoofing of people: support staff are privileged without MFA.
    ("BT-S11", "support", "open"),
    ("BT-S10", "support", "mitigated"),
    # Data store.
    ("BT-I15", "database", "open"),
    ("BT-T15", "database", "mitigated"),
    ("BT-D09", "database", "accepted"),
    # Model statements.
    ("BT-E04", "orders-service", "mitigated"),
    ("BT-R05", "customer", "not_applicable"),
    ("BT-T13", "spa", "accepted"),
]


@pytest.fixture(scope="module")
def analysis():
    return analyse_file(EXAMPLE)


@pytest.mark.parametrize(("rule", "element", "status"), [
    pytest.param(r, e, s, id=f"{r}@{e}") for r, e, s in EXPECTED
])
def test_expected_threat(analysis, rule: str, element: str, status: str) -> None:
    """The example yields this threat on this element with this status."""
    assert statuses(analysis)[f"{rule}@{element}"] == status


def test_example_counts(analysis) -> None:
    """The example's totals per outcome (a change here means the rules or the model changed)."""
    counts = {s: len(analysis.by_status(s)) for s in ("open", "mitigated", "accepted", "not_applicable")}
    assert counts == {"open": 40, "mitigated": 56, "accepted": 2, "not_applicable": 270}
    assert analysis.warnings == ()


def test_accepted_override_lowers_the_score_with_its_reason(analysis) -> None:
    """The SPA supply-chain threat carries its override and reason into the score."""
    a = next(x for x in analysis.assessments if x.id == "BT-T13@spa")
    assert a.score.factors["exploitability"] == 2
    assert a.score.adjustments[-1] == (
        "exploitability 4->2: override: No third-party scripts are loaded at runtime.")


def test_html_report_is_followable(analysis) -> None:
    """The HTML report has the DFD, the register sorted by risk, threats per element, evidence."""
    page = to_html(analysis)
    assert page.startswith("<!doctype html>")
    assert "<svg" in page
    assert "Data-flow diagram of Shop API" in page
    for anchor, heading in (("objectives", "1. Objectives and assets"), ("assumptions", "2. Assumptions"),
                            ("dfd", "3. Data-flow diagram"), ("register-title", "4-5. Risk register"),
                            ("elements", "Threats per element, mitigations and evidence"),
                            ("not-applicable", "Not applicable")):
        assert f'<h2 id="{anchor}">{heading}</h2>' in page
    top = analysis.register()[0]
    assert page.index(f'<tr id="{top.id}" ') < page.index(f'<tr id="{analysis.register()[-1].id}" ')
    for target in ("#objectives", "#assumptions", "#dfd", "#register", "#elements", "#not-applicable",
                   "#el-users-service"):
        assert f'href="{target}"' in page  # the contents list
    assert "not run yet (`bastion threats verify`)" in page  # BT-E04@orders-service names a test
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.parametrize("model", [EXAMPLE, ROOT / "threatmodel" / "bastion.yaml"], ids=["shop-example", "bastion"])
def test_every_named_test_exists(model) -> None:
    """Each pytest node id a shipped model's mitigations name is a test function in a file that
    exists (relative to where `verify` runs it), so `verify` never answers "test not found"."""
    loaded = load_model(model)
    cwd = default_cwd(loaded)
    missing = []
    for entry in loaded.threats:
        for test in entry.tests:
            file, _, name = test.partition("::")
            path = cwd / file
            function = name.split("[", 1)[0].rsplit("::", 1)[-1]
            defined = rf"^\s*(async )?def {re.escape(function)}\("
            if not path.is_file() or not re.search(defined, path.read_text(), re.M):
                missing.append(test)
    assert missing == []
