"""DREAD arithmetic, bands, fact adjustments and recorded overrides."""

from __future__ import annotations

import pytest

from bastion.threatmodel import band_of_total, score
from bastion.threatmodel.model import DREAD_FACTORS
from tests.threatmodel.conftest import MINIMAL, analyse_text


@pytest.mark.parametrize(("factors", "value", "band"), [
    pytest.param((0, 0, 0, 0, 0), 0.0, "low", id="zero"),
    pytest.param((4, 4, 4, 4, 3), 3.8, "low", id="3.8-low"),
    pytest.param((4, 4, 4, 4, 4), 4.0, "medium", id="4.0-medium"),
    pytest.param((6, 6, 6, 6, 5), 5.8, "medium", id="5.8-medium"),
    pytest.param((6, 6, 6, 6, 6), 6.0, "high", id="6.0-high"),
    pytest.param((8, 8, 8, 8, 7), 7.8, "high", id="7.8-high"),
    pytest.param((8, 8, 8, 8, 8), 8.0, "critical", id="8.0-critical"),
    pytest.param((10, 10, 10, 10, 10), 10.0, "critical", id="ten"),
])
def test_score_is_the_mean_and_bands_split_at_4_6_8(factors, value, band) -> None:
    """(D + R + E + A + D) / 5 with bands low < 4 <= medium < 6 <= high < 8 <= critical."""
    result = score(factors, {}, dict(zip(DREAD_FACTORS, factors, strict=True)), "pinned")
    assert (result.value, result.band) == (value, band)


def test_band_edges_use_the_integer_sum() -> None:
    """Band edges compare sums (19/20, 29/30, 39/40), so floats cannot misplace a threat."""
    assert [band_of_total(t) for t in (19, 20, 29, 30, 39, 40)] == [
        "low", "medium", "medium", "high", "high", "critical"]


@pytest.mark.parametrize(("facts", "factors", "notes"), [
    pytest.param({"exposed": True, "sensitivity": 1}, (5, 5, 6, 5, 6),
                 ("exploitability 5->6: exposed across a trust boundary to an untrusted party",
                  "discoverability 5->6: exposed across a trust boundary to an untrusted party"),
                 id="exposed"),
    pytest.param({"exposed": False, "sensitivity": 1}, (5, 5, 5, 5, 4),
                 ("discoverability 5->4: reachable only from behind a trust boundary",), id="internal"),
    pytest.param({"exposed": False, "sensitivity": 3}, (7, 5, 5, 5, 4),
                 ("discoverability 5->4: reachable only from behind a trust boundary",
                  "damage 5->7: involves restricted data"), id="restricted"),
    pytest.param({"exposed": False, "sensitivity": 0, "handles_pii": True}, (3, 5, 5, 6, 4),
                 ("discoverability 5->4: reachable only from behind a trust boundary",
                  "damage 5->3: involves only public data", "affected_users 5->6: involves personal data"),
                 id="public-pii"),
])
def test_facts_adjust_defaults_and_say_why(facts, factors, notes) -> None:
    """Exposure and data classification move the rule's defaults, each move recorded."""
    result = score((5, 5, 5, 5, 5), facts)
    assert tuple(result.factors.values()) == factors
    assert result.adjustments == notes


def test_factors_stay_within_0_and_10() -> None:
    """Adjustments clamp at the ends of the scale."""
    result = score((10, 10, 10, 10, 10), {"exposed": True, "sensitivity": 3, "handles_pii": True})
    assert result.value == 10.0
    assert result.adjustments == ()


def test_model_override_is_applied_with_its_reason(library) -> None:
    """A DREAD override in the model replaces factors and records the reason."""
    text = MINIMAL + """\
threats:
  - id: BT-E01@api.get-order
    status: open
    dread: {exploitability: 2, discoverability: 1, reason: ids are random 128-bit values}
"""
    a = next(x for x in analyse_text(text, library).assessments if x.id == "BT-E01@api.get-order")
    assert (a.score.factors["exploitability"], a.score.factors["discoverability"]) == (2, 1)
    assert "exploitability 8->2: override: ids are random 128-bit values" in a.score.adjustments


def test_register_is_sorted_by_risk(library) -> None:
    """The risk register lists the highest DREAD first, ties by id."""
    register = analyse_text(MINIMAL, library).register()
    keys = [(-a.score.total, a.id) for a in register]
    assert keys == sorted(keys)
    assert register[0].score.total >= register[-1].score.total
