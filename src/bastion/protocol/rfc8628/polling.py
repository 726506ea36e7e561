"""The polling interval (RFC 8628 §3.2, §3.5).

A poll sooner than the interval after the previous poll of the same device code is answered
`slow_down`, and the interval grows by 5 seconds "for this and all subsequent requests". The
first poll is never early. Times are in milliseconds so a 1-second interval is judged fairly.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 8628 §3.5: "the interval MUST be increased by 5 seconds".
SLOW_DOWN_INCREMENT = 5


@dataclass(frozen=True)
class PollTiming:
    """The verdict on one poll: whether it was early, and the interval from now on (seconds)."""

    slow_down: bool
    interval: int


def poll_timing(*, last_poll_ms: int | None, interval: int, now_ms: int) -> PollTiming:
    """Judge a poll made at `now_ms` against the previous poll and the current interval."""
    if last_poll_ms is not None and now_ms - last_poll_ms < interval * 1000:
        return PollTiming(slow_down=True, interval=interval + SLOW_DOWN_INCREMENT)
    return PollTiming(slow_down=False, interval=interval)
