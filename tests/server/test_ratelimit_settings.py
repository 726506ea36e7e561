"""The typed `[ratelimit]` settings are what the server's limiter and load shedding are built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import Settings, load_settings
from bastion.ratelimit import FixedLimit, GradientLimit, LoadSheddingMiddleware
from bastion.server import limits


def _settings(tmp_path: Path, **ratelimit: object) -> Settings:
    overrides = {"issuer": "http://127.0.0.1:8000", "data_dir": tmp_path, "ratelimit": ratelimit}
    return load_settings(environ={}, overrides=overrides)


@pytest.mark.parametrize(
    ("shedding", "limit_type", "current"),
    [
        pytest.param({"enabled": True, "limit": 3, "queue_size": 0, "queue_timeout": 0.5}, FixedLimit, 3, id="fixed"),
        pytest.param({"enabled": True, "queue_size": 0, "queue_timeout": 0.5}, GradientLimit, None, id="adaptive"),
    ],
)
def test_shedding_settings_configure_the_load_shedding_layer(tmp_path, shedding, limit_type, current):
    """`[ratelimit.shedding]` gives the layer its limit, queue size and queue timeout."""
    settings = _settings(tmp_path, shedding=shedding)

    [layer] = [
        m for m in limits.middleware(settings, limits.build_limiter(settings)) if m.cls is LoadSheddingMiddleware
    ]

    assert isinstance(layer.kwargs["limit"], limit_type)
    if current is not None:
        assert layer.kwargs["limit"].current == current
    assert (layer.kwargs["queue_size"], layer.kwargs["queue_timeout"]) == (0, 0.5)


def test_no_shedding_layer_unless_enabled(tmp_path):
    """Load shedding is off by default, and with `enabled = false` whatever else is set."""
    for settings in (_settings(tmp_path), _settings(tmp_path, shedding={"enabled": False, "limit": 3})):
        layers = limits.middleware(settings, limits.build_limiter(settings))

        assert [m for m in layers if m.cls is LoadSheddingMiddleware] == []


def test_policies_reach_the_limiter(tmp_path):
    """The limiter counts exactly the policies of the settings: built-in ones and configured ones."""
    settings = _settings(tmp_path, policies={"token_per_client": {"key": ["client_id"], "limit": "5/minute"}})

    limiter = limits.build_limiter(settings)

    assert list(limiter.policies.values()) == list(settings.ratelimit.policies)
    assert limiter.policies["token_per_client"].limit == 5
