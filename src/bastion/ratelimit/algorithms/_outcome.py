"""The result every algorithm returns for one decision."""

from __future__ import annotations

from typing import NamedTuple


class Outcome(NamedTuple):
    """One admission decision, in microseconds (a tuple: made on every request, kept cheap).

    Attributes:
        allowed: whether a request of the asked cost is (or was) admitted.
        remaining: requests of cost 1 still admissible right now, never negative.
        reset_after: until the limiter is back to its full allowance (0 when it already is).
        retry_after: until a request of the asked cost would be admitted (0 when allowed).
    """

    allowed: bool
    remaining: int
    reset_after: int
    retry_after: int
