"""Counters for allowed, limited and shed requests, rendered in the Prometheus text format.

Kept in process and dependency-free; the server mounts `render_prometheus()` at /metrics (off by
default on public listeners).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

Series = tuple[str, tuple[tuple[str, str], ...]]
"""A metric name with its sorted labels: the key of one time series."""

_HELP: Final = {
    "bastion_ratelimit_decisions_total": (
        "counter", "Rate-limit decisions by policy, operation (check or hit) and outcome."
    ),
    "bastion_ratelimit_store_errors_total": (
        "counter", "Decisions answered by a policy's failure mode because the store failed."
    ),
    "bastion_loadshed_requests_total": (
        "counter", "Requests seen by the load shedder, by priority and outcome."
    ),
    "bastion_loadshed_limit": ("gauge", "The load shedder's current concurrency limit."),
    "bastion_loadshed_inflight": ("gauge", "Requests the load shedder has admitted and not yet finished."),
}


class Metrics:
    """A registry of labelled counters and gauges."""

    def __init__(self) -> None:
        self._counters: Counter[Series] = Counter()
        self._gauges: dict[Series, float] = {}
        self._cells: dict[tuple[Series, ...], list[int]] = {}

    @staticmethod
    def series(name: str, **labels: str) -> Series:
        """Resolve a series once, for `add` on a hot path."""
        return (name, tuple(sorted(labels.items())))

    def add(self, series: Series, amount: int = 1) -> None:
        self._counters[series] += amount

    def cells(self, series: Sequence[Series]) -> list[int]:
        """Counters for `series` as a list a hot path increments in place (`cells[i] += 1`).

        Cheaper than `add`, which hashes the series on every call. The same series asked
        twice give the same list, so they count together as with `add`.
        """
        return self._cells.setdefault(tuple(series), [0] * len(series))

    def _totals(self) -> Counter[Series]:
        totals = self._counters.copy()
        for series, counts in self._cells.items():
            for one, count in zip(series, counts, strict=True):
                if count:
                    totals[one] += count
        return totals

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        self._counters[self.series(name, **labels)] += amount

    def set(self, name: str, value: float, **labels: str) -> None:
        self._gauges[self.series(name, **labels)] = value

    def value(self, name: str, **labels: str) -> float:
        """A counter's or gauge's current value (0 when never touched)."""
        series = self.series(name, **labels)
        if series in self._gauges:
            return self._gauges[series]
        return float(self._totals()[series])

    def reset(self) -> None:
        self._counters.clear()
        self._gauges.clear()
        for counts in self._cells.values():
            counts[:] = [0] * len(counts)  # in place: their holders keep counting into them

    def render(self) -> str:
        """The exposition text format, version 0.0.4."""
        lines: list[str] = []
        samples: dict[str, list[str]] = {}
        for (name, labels), value in [*self._totals().items(), *self._gauges.items()]:
            samples.setdefault(name, []).append(f"{name}{_labels(labels)} {_number(value)}")
        for name in sorted(samples):
            kind, text = _HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *sorted(samples[name])]
        return "\n".join(lines) + "\n" if lines else ""


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


DEFAULT_METRICS: Final = Metrics()


def render_prometheus(metrics: Metrics = DEFAULT_METRICS) -> str:
    """The counters of `metrics` (the process-wide registry by default) as Prometheus text."""
    return metrics.render()
