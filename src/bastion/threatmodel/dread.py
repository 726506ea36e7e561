"""DREAD risk scoring: (Damage + Reproducibility + Exploitability + Affected users +
Discoverability) / 5, each factor 0-10.

Defaults come from the rule; model facts adjust them (exposure across a trust boundary to an
untrusted party, the classification of the data involved) and every adjustment is recorded, so
a score can be explained. Microsoft dropped DREAD for inconsistent scoring; recording why each
factor moved, and requiring a reason for manual overrides, is our answer to that criticism.
Bands compare the integer sum, so no float rounding can move a threat across a band edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bastion.threatmodel.model import DREAD_FACTORS

Band = Literal["low", "medium", "high", "critical"]
BANDS: tuple[Band, ...] = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Score:
    """Five factors, the adjustments that produced them, and the derived score and band."""

    factors: dict[str, int]
    adjustments: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.factors[f] for f in DREAD_FACTORS)

    @property
    def value(self) -> float:
        return self.total / 5

    @property
    def band(self) -> Band:
        return band_of_total(self.total)


def band_of_total(total: int) -> Band:
    """Band of a factor sum: low < 4, medium 4 to < 6, high 6 to < 8, critical >= 8 (x5)."""
    if total < 20:
        return "low"
    if total < 30:
        return "medium"
    if total < 40:
        return "high"
    return "critical"


def band_rank(band: str) -> int:
    """Position of a band name in BANDS; ValueError for an unknown name."""
    return [str(b) for b in BANDS].index(band)


def _clamp(value: int) -> int:
    return max(0, min(10, value))


def score(defaults: tuple[int, int, int, int, int], facts: Mapping[str, Any],
          override: Mapping[str, int] | None = None, override_reason: str = "") -> Score:
    """Score one threat from the rule's defaults, the target's facts and a manual override."""
    factors = dict(zip(DREAD_FACTORS, defaults, strict=True))
    notes: list[str] = []

    def bump(name: str, delta: int, why: str) -> None:
        new = _clamp(factors[name] + delta)
        if new != factors[name]:
            notes.append(f"{name} {factors[name]}->{new}: {why}")
            factors[name] = new

    if facts.get("exposed"):
        bump("exploitability", 1, "exposed across a trust boundary to an untrusted party")
        bump("discoverability", 1, "exposed across a trust boundary to an untrusted party")
    else:
        bump("discoverability", -1, "reachable only from behind a trust boundary")
    sensitivity = int(facts.get("sensitivity", -1))
    if sensitivity == 3:
        bump("damage", 2, "involves restricted data")
    elif sensitivity == 2:
        bump("damage", 1, "involves confidential data")
    elif sensitivity == 0:
        bump("damage", -2, "involves only public data")
    if facts.get("handles_pii"):
        bump("affected_users", 1, "involves personal data")
    for name, value in (override or {}).items():
        if factors[name] != value:
            notes.append(f"{name} {factors[name]}->{value}: override: {override_reason}")
            factors[name] = value
    return Score(factors, tuple(notes))
