"""Counters for allowed, limited and shed requests, exposed through `prometheus-client`.

A decision counts into a plain list (`cells`) on the hot path; `sync()` publishes what was
counted since the last call into the registry's `prometheus-client` counters and gauges, so a
scrape costs the hot path nothing. With several workers (`PROMETHEUS_MULTIPROC_DIR`) those
counters live in the library's shared files, summed by whichever worker is scraped; each worker
syncs before it is scraped and in the background (`bastion.server.metrics`). The server mounts
the exposition at /metrics (loopback clients only by default).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge

Series = tuple[str, tuple[tuple[str, str], ...]]
"""A metric name with its sorted labels: the key of one time series."""

# `_created` series double every counter and mean nothing to a counter that starts with the process.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in the library

_HELP: Final = {
    "bastion_ratelimit_decisions_total": (
        "counter", "Rate-limit decisions by policy, operation (check or hit) and outcome."
    ),
    "bastion_ratelimit_store_errors_total": (
        "counter", "Decisions answered by a policy's failure mode because the store failed."
    ),
    "bastion_redis_errors_total": ("counter", "Redis calls that failed, by component."),
    "bastion_loadshed_requests_total": (
        "counter", "Requests seen by the load shedder, by priority and outcome."
    ),
    "bastion_loadshed_limit": ("gauge", "The load shedder's current concurrency limit, summed over workers."),
    "bastion_loadshed_inflight": ("gauge", "Requests the load shedder has admitted and not yet finished."),
}


class Metrics:
    """A registry of labelled counters and gauges, counted in process and published by `sync`."""

    def __init__(self) -> None:
        self._counters: Counter[Series] = Counter()
        self._gauges: dict[Series, float] = {}
        self._cells: dict[tuple[Series, ...], list[int]] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self._families: dict[str, PromCounter | PromGauge] = {}
        self._published: Counter[Series] = Counter()

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
        """A counter's or gauge's current value in this process (0 when never touched)."""
        series = self.series(name, **labels)
        if series in self._gauges:
            return self._gauges[series]
        return float(self._totals()[series])

    def reset(self) -> None:
        self._counters.clear()
        self._gauges.clear()
        for counts in self._cells.values():
            counts[:] = [0] * len(counts)  # in place: their holders keep counting into them

    def _family(self, name: str, labels: tuple[str, ...], gauge: bool) -> PromCounter | PromGauge:
        family = self._families.get(name)
        if family is None:
            kind, text = _HELP.get(name, ("gauge" if gauge else "counter", name))
            if kind == "gauge":
                # Several workers: each reports its own value while it lives, and the scrape sums them.
                family = PromGauge(name, text, labels, registry=self.registry, multiprocess_mode="livesum")
            else:
                family = PromCounter(name, text, labels, registry=self.registry)
            self._families[name] = family
        return family

    def sync(self) -> None:
        """Publish the counts since the last call, and the gauges, to the `prometheus-client` metrics."""
        for series, total in sorted(self._totals().items()):
            delta = total - self._published[series]
            if delta > 0:
                name, labels = series
                _child(self._family(name, tuple(k for k, _ in labels), gauge=False), labels).inc(delta)
            self._published[series] = total  # after a reset counting resumes from the new total
        for (name, labels), value in sorted(self._gauges.items()):
            gauge = _child(self._family(name, tuple(k for k, _ in labels), gauge=True), labels)
            if isinstance(gauge, PromGauge):
                gauge.set(value)

    def render(self) -> str:
        """This registry in the Prometheus text exposition format (version 0.0.4)."""
        self.sync()
        return generate_latest(self.registry).decode("utf-8")


def _child(family: PromCounter | PromGauge, labels: tuple[tuple[str, str], ...]) -> PromCounter | PromGauge:
    return family.labels(*(value for _, value in labels)) if labels else family


DEFAULT_METRICS: Final = Metrics()


def render_prometheus(metrics: Metrics = DEFAULT_METRICS) -> str:
    """The counters of `metrics` (the process-wide registry by default) as Prometheus text."""
    return metrics.render()
