"""Evidence for the shop example's BT-E04 mitigation: every orders route requires a scope
(`bastion threats verify examples/threatmodel/shop-api.yaml` runs it)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orders_policy import ROUTES  # noqa: E402 - the example's module, beside the model


def test_every_route_requires_a_scope():
    """No route of the orders service is left without a required scope."""
    assert ROUTES
    assert all(scope and ":" in scope for scope in ROUTES.values())
