"""RFC 8707 resource indicators choose the token's single audience (sans-I/O)."""

from __future__ import annotations

import pytest

from bastion.protocol.errors import InvalidTarget
from bastion.protocol.rfc8707 import select_audience

DEFAULT = "https://as.example.test/api"
ORDERS = "https://api.example.test/orders"
BILLING = "https://api.example.test/billing"
SHAPE = "resource must be an absolute URI without a fragment (RFC 8707 §2)"


@pytest.mark.parametrize(
    ("resources", "allowed", "expected"),
    [
        pytest.param([], [], DEFAULT, id="none-requested-default"),
        pytest.param([], [ORDERS, BILLING], ORDERS, id="none-requested-first-registered"),
        pytest.param([BILLING], [ORDERS, BILLING], BILLING, id="registered"),
        pytest.param([DEFAULT], [], DEFAULT, id="default-explicitly"),
        pytest.param([ORDERS + "?v=2"], [ORDERS + "?v=2"], ORDERS + "?v=2", id="query-allowed"),
    ],
)
def test_audience_selection(resources, allowed, expected):
    """The audience is the requested resource if allowed, else the client's first audience or the default."""
    assert select_audience(resources, allowed, DEFAULT) == expected


@pytest.mark.parametrize(
    ("resources", "allowed", "description"),
    [
        pytest.param([ORDERS, BILLING], [ORDERS, BILLING], "request a single resource per token", id="several"),
        pytest.param(["orders"], [], SHAPE, id="relative"),
        pytest.param(["urn:example:orders"], ["urn:example:orders"], SHAPE, id="urn-without-authority"),
        pytest.param([ORDERS + "#x"], [ORDERS + "#x"], SHAPE, id="fragment-even-if-registered"),
        pytest.param([ORDERS + "#"], [], SHAPE, id="empty-fragment"),
        pytest.param(["https://"], [], SHAPE, id="no-host"),
        pytest.param([BILLING], [ORDERS], "resource not allowed for this client", id="not-registered"),
        pytest.param([ORDERS], [], "resource not allowed for this client", id="not-default"),
        pytest.param([ORDERS.upper()], [ORDERS], "resource not allowed for this client", id="exact-match-only"),
    ],
)
def test_invalid_target(resources, allowed, description):
    """A malformed, unregistered or repeated resource is invalid_target."""
    with pytest.raises(InvalidTarget) as caught:
        select_audience(resources, allowed, DEFAULT)

    assert caught.value.description == description
    assert caught.value.error == "invalid_target"
    assert caught.value.status_code == 400
