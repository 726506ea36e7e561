"""Reading a live server's /metrics: the samples by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests._live import LiveServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: LiveServer) -> Samples:
    """Every sample of the server's /metrics, scraped from 127.0.0.1."""
    response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (a counter never touched)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
