"""The rule engine: STRIDE per element and per interaction, suppression by facts, statuses."""

from __future__ import annotations

import pytest

from bastion.threatmodel import ThreatModelError, parse_model_text
from bastion.threatmodel.rules import parse_rules
from tests.threatmodel.conftest import MINIMAL, analyse_text, statuses


def test_encrypted_authenticated_flow_gets_no_plaintext_threats(library) -> None:
    """Facts suppress what does not apply: TLS + bearer token rule out plaintext tampering."""
    result = statuses(analyse_text(MINIMAL, library))
    assert result["BT-T04@user-api"] == "not_applicable"
    assert result["BT-I05@user-api"] == "not_applicable"
    assert result["BT-I14@user-api"] == "not_applicable"


def test_plaintext_flow_gets_tampering_and_disclosure(library) -> None:
    """The same flow over plain HTTP gets the threats the encrypted one was spared."""
    text = MINIMAL.replace("to: api, protocol: https", "to: api, protocol: http")
    result = statuses(analyse_text(text, library))
    assert result["BT-T04@user-api"] == "open"
    assert result["BT-I05@user-api"] == "open"
    assert result["BT-I14@user-api"] == "open"
    assert result["BT-I13@user-api"] == "open"  # per interaction: confidential data across a boundary


def test_per_interaction_threats_only_on_boundary_crossing_flows(library) -> None:
    """Interaction rules run on flows that cross a trust boundary, never on internal flows."""
    analysis = analyse_text(MINIMAL, library)
    interaction = {a.threat.element_id for a in analysis.assessments
                   if a.threat.element_type == "interaction"}
    assert interaction == {"user-api"}  # api-db stays inside `cloud`


def test_nested_boundary_makes_a_flow_cross(library) -> None:
    """Moving the store into a nested boundary makes api-db an interaction too."""
    text = MINIMAL.replace("  - {id: cloud}\n", "  - {id: cloud}\n  - {id: data, parent: cloud}\n")
    text = text.replace("{id: db, boundary: cloud", "{id: db, boundary: data")
    analysis = analyse_text(text, library)
    assert {a.threat.element_id for a in analysis.assessments
            if a.threat.element_type == "interaction"} == {"user-api", "api-db"}


def test_facts_mitigate_bola(library) -> None:
    """An ownership check declared on the endpoint turns BOLA from open into mitigated."""
    before = analyse_text(MINIMAL, library)
    after = analyse_text(MINIMAL.replace("authenticated: true,", "authenticated: true, "
                                         "ownership_check: true,"), library)
    assert statuses(before)["BT-E01@api.get-order"] == "open"
    mitigated = next(a for a in after.assessments if a.id == "BT-E01@api.get-order")
    assert (mitigated.status, mitigated.mitigation) == (
        "mitigated", "declared in the model: the endpoint checks that the caller may access each object id")


def test_report_separates_the_four_outcomes(library) -> None:
    """Open, mitigated, accepted and not-applicable threats are told apart."""
    text = MINIMAL + """\
threats:
  - {id: BT-T08@api, status: mitigated, mitigation: SQLAlchemy Core with bound parameters}
  - {id: BT-D09@db, status: accepted, reason: managed backups, owner: ops}
  - {id: BT-I15@db, status: not_applicable, reason: column encryption is out of scope here}
"""
    result = statuses(analyse_text(text, library))
    assert result["BT-T08@api"] == "mitigated"
    assert result["BT-D09@db"] == "accepted"
    assert result["BT-I15@db"] == "not_applicable"
    assert result["BT-E01@api.get-order"] == "open"


def test_patterns_match_and_exact_ids_win(library) -> None:
    """A `RULE@*` pattern covers every element; an exact entry overrides it."""
    text = MINIMAL + """\
threats:
  - {id: "BT-E07@*", status: accepted, reason: hardening is the platform's job, owner: ops}
  - {id: BT-E07@api, status: mitigated, mitigation: CIS-hardened image}
"""
    analysis = analyse_text(text, library)
    entry = next(a for a in analysis.assessments if a.id == "BT-E07@api")
    assert (entry.status, entry.mitigation) == ("mitigated", "CIS-hardened image")


def test_orphan_threat_entries_are_warned_about(library) -> None:
    """A status for a threat that no longer exists is reported, not silently kept."""
    text = MINIMAL + "threats:\n  - {id: BT-S01@gone, status: open}\n"
    analysis = analyse_text(text, library)
    assert analysis.warnings == (
        "model.yaml:24: threat entry `BT-S01@gone` matches no threat (renamed element or rule?)",)


def test_user_rule_library_extends_the_shipped_one(library) -> None:
    """A user rule file adds rules with the same machinery (ids, STRIDE, conditions)."""
    extra = parse_rules([("mine.yaml", """\
rules:
  - id: ACME-T01
    title: Orders API without request signing
    stride: T
    applies_to: [process]
    when: element.id == "api"
    mitigated_when: element.audit_trail
    dread: [5, 5, 5, 5, 5]
""")])
    analysis = analyse_text(MINIMAL, (*library, *extra))
    assert statuses(analysis)["ACME-T01@api"] == "open"


@pytest.mark.parametrize(("rule", "message"), [
    pytest.param("stride: S\n    applies_to: [data_store]",
                 "STRIDE per element: Spoofing does not apply to data_store", id="stride-per-element"),
    pytest.param("stride: E\n    applies_to: [flow]",
                 "STRIDE per element: Elevation of privilege does not apply to flow", id="flow-E"),
    pytest.param("stride: T\n    applies_to: [external_entity]",
                 "STRIDE per element: Tampering does not apply to external_entity", id="entity-T"),
    pytest.param("stride: X\n    applies_to: [process]", "stride `X` is not one of S, T, R, I, D, E",
                 id="bad-stride"),
    pytest.param("stride: T\n    applies_to: [flow, interaction]",
                 "a rule targets flows or interactions, not both (same threat ids)", id="flow-and-interaction"),
])
def test_rule_files_are_validated(rule: str, message: str) -> None:
    """Rules that break STRIDE per element or the schema are refused with file and line."""
    text = f"rules:\n  - id: ACME-X01\n    title: x\n    {rule}\n    when: 'True'\n    dread: [1, 1, 1, 1, 1]\n"
    with pytest.raises(ThreatModelError) as info:
        parse_rules([("mine.yaml", text)])
    assert any(p.file == "mine.yaml" and p.message == message for p in info.value.problems)


def test_unsafe_condition_in_a_rule_file_is_refused() -> None:
    """A rule file cannot smuggle Python into a condition."""
    text = ("rules:\n  - id: ACME-X01\n    title: x\n    stride: T\n    applies_to: [process]\n"
            "    when: \"__import__('os').system('id')\"\n    dread: [1, 1, 1, 1, 1]\n")
    with pytest.raises(ThreatModelError) as info:
        parse_rules([("evil.yaml", text)])
    assert str(info.value).startswith("evil.yaml:6: when: ")


def test_duplicate_rule_ids_across_files_are_refused(library) -> None:
    """A user rule cannot silently replace a shipped one."""
    text = "rules:\n  - {id: BT-S01, title: x, stride: S, applies_to: [process], when: 'True', dread: [1,1,1,1,1]}\n"
    with pytest.raises(ThreatModelError) as info:
        parse_rules([("a.yaml", text), ("b.yaml", text)])
    assert info.value.problems[0].message == "rule id BT-S01 is already defined in a.yaml:2"


def test_model_rules_key_loads_files_relative_to_the_model(tmp_path, library) -> None:
    """`rules:` in the model names extra library files next to it."""
    from bastion.threatmodel import analyse_file

    (tmp_path / "mine.yaml").write_text(
        "rules:\n  - {id: ACME-S01, title: x, stride: S, applies_to: [process], when: 'True',"
        " dread: [1, 1, 1, 1, 1]}\n")
    (tmp_path / "m.yaml").write_text(MINIMAL + "rules: [mine.yaml]\n")
    assert statuses(analyse_file(tmp_path / "m.yaml"))["ACME-S01@api"] == "open"
    assert parse_model_text(MINIMAL, "x.yaml").rule_files == ()
