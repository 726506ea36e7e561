"""The result every algorithm returns for one decision."""

from __future__ import annotations

Outcome = tuple[bool, int, int, int]
"""One admission decision, in microseconds: (allowed, remaining, reset_after, retry_after).

A plain tuple, because one is made on every request. The fields:
    allowed: whether a request of the asked cost is (or was) admitted.
    remaining: requests of cost 1 still admissible right now, never negative.
    reset_after: until the limiter is back to its full allowance (0 when it already is).
    retry_after: until a request of the asked cost would be admitted (0 when allowed).
"""
