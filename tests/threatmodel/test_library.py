"""The shipped rule library: size, coverage of OWASP API Top 10 2023, STRIDE and the seed."""

from __future__ import annotations

from bastion.threatmodel import OWASP_API_2023, SEED_CONTROLS, STRIDE_PER_ELEMENT, analyse_file
from tests.threatmodel.conftest import EXAMPLE


def test_library_has_at_least_60_rules_with_unique_ids(library) -> None:
    """The issue asks for >= 60 rules; ids are unique and stable strings."""
    ids = [r.id for r in library]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


def test_every_owasp_api_top10_2023_category_is_covered(library) -> None:
    """API1 through API10 (2023) each have at least one rule."""
    assert {r.owasp_api for r in library if r.owasp_api} == set(OWASP_API_2023)


def test_every_seed_mitigation_is_covered(library) -> None:
    """Each STRIDE mitigation of the seed is the control of at least one rule."""
    assert {c for r in library for c in r.controls} == set(SEED_CONTROLS)


def test_stride_per_element_is_complete(library) -> None:
    """Every (element type, STRIDE category) pair allowed by STRIDE per element has a rule."""
    covered = {(t, r.stride) for r in library for t in r.applies_to}
    wanted = {(t, s) for t, cats in STRIDE_PER_ELEMENT.items() for s in cats
              if t not in ("endpoint", "interaction")}
    assert wanted <= covered


def test_every_rule_has_references_mitigations_and_dread(library) -> None:
    """Each rule carries a description, a mitigation, a CWE and five DREAD defaults."""
    incomplete = [r.id for r in library
                  if not (r.description and r.mitigations and r.cwe and len(r.dread) == 5)]
    assert incomplete == []


def test_every_rule_evaluates_on_the_example_without_error(library) -> None:
    """No condition in the library reads an attribute the model does not have (typos fail)."""
    analysis = analyse_file(EXAMPLE)
    examined = {a.rule.id for a in analysis.assessments}
    assert examined == {r.id for r in library}
