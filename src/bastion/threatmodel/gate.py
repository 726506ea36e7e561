"""The CI gate (`check --fail-on`) and the model diff (`diff OLD NEW`, `--new-since REV`)."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.threatmodel.assess import Analysis, Assessment
from bastion.threatmodel.dread import band_rank


def failing(analysis: Analysis, fail_on: str, only: set[str] | None = None) -> list[Assessment]:
    """Open threats in band `fail_on` or above (restricted to ids in `only` when given)."""
    floor = band_rank(fail_on)
    return [a for a in analysis.register()
            if a.effective == "open" and band_rank(a.score.band) >= floor
            and (only is None or a.id in only)]


@dataclass(frozen=True)
class Rescored:
    """A threat present in both models whose score or status changed."""

    id: str
    old_score: float
    new_score: float
    old_band: str
    new_band: str
    old_status: str
    new_status: str


@dataclass(frozen=True)
class Diff:
    """Threats added, removed and re-scored between two analyses (applicable threats only)."""

    added: list[Assessment]
    removed: list[Assessment]
    changed: list[Rescored]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff(old: Analysis, new: Analysis) -> Diff:
    """Compare applicable threats by id."""
    before = {a.id: a for a in old.register()}
    after = {a.id: a for a in new.register()}
    changed = [
        Rescored(i, before[i].score.value, after[i].score.value, before[i].score.band,
                 after[i].score.band, before[i].effective, after[i].effective)
        for i in sorted(before.keys() & after.keys())
        if (before[i].score.total, before[i].effective) != (after[i].score.total, after[i].effective)
    ]
    return Diff(
        added=[after[i] for i in sorted(after.keys() - before.keys())],
        removed=[before[i] for i in sorted(before.keys() - after.keys())],
        changed=changed,
    )


def new_threat_ids(old: Analysis | None, new: Analysis) -> set[str]:
    """Ids of applicable threats in `new` that `old` did not have (all of them if no `old`)."""
    seen = {a.id for a in old.register()} if old is not None else set()
    return {a.id for a in new.register()} - seen
