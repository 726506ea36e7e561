"""What the pages say when they throttle: one message for sign-in, second factor and device code
entry, with the wait in the unit a person expects."""

from __future__ import annotations

import pytest

from bastion.server.pages import throttled_message


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        pytest.param(0.2, "1 second", id="under-a-second"),
        pytest.param(1.0, "1 second", id="one-second"),
        pytest.param(4.3, "5 seconds", id="seconds-rounded-up"),
        pytest.param(59.5, "60 seconds", id="just-under-a-minute"),
        pytest.param(60.0, "1 minute", id="one-minute"),
        pytest.param(60.5, "2 minutes", id="minutes-rounded-up"),
        pytest.param(900.0, "15 minutes", id="a-lock"),
    ],
)
def test_wait_in_seconds_under_a_minute_and_minutes_above(retry_after, wait):
    """Under a minute the wait is whole seconds, from a minute whole minutes, rounded up, singular or plural."""
    assert throttled_message("Too many wrong codes.", retry_after) == f"Too many wrong codes. Try again in {wait}."
