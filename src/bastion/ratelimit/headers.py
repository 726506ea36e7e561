"""Rendering decisions as HTTP: `Retry-After`, the IETF `RateLimit` and `RateLimit-Policy`
fields, and the JSON body of a 429.

Header fields follow draft-ietf-httpapi-ratelimit-headers (structured fields, RFC 9651):
`RateLimit-Policy` lists each applied policy once (`q` quota, `w` window in seconds) and
`RateLimit` carries the single binding item (`r` remaining, `t` seconds to reset), so stacked
policies never duplicate a field. `Retry-After` is delay-seconds (RFC 9110 §10.2.3).

`t` tells a client when it may send again, so it agrees with the other fields: on a refusal it is
the `Retry-After` value (a GCRA's full allowance returns only after the whole window, but the next
request is admitted much sooner), and when admitted it never exceeds the policy's window `w` (a
sliding window's estimate decays over two windows; a client reads `t` against `w`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bastion.ratelimit.decision import Decision, strictest


@dataclass(frozen=True, slots=True)
class RateLimitResponse:
    """A ready-to-send 429 (or the headers of an admitted response)."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes
    media_type: str = "application/json"


def _sf_string(value: str) -> str:
    # RFC 9651 §3.3.3: sf-string escapes only DQUOTE and backslash.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def retry_after_seconds(decision: Decision) -> int:
    """Whole seconds to wait, rounded up and at least 1 for a refusal (0 when allowed)."""
    if decision.allowed:
        return 0
    return max(1, math.ceil(decision.retry_after))


def reset_seconds(decision: Decision) -> int:
    """The `t` of `RateLimit`: `Retry-After` for a refusal, else the reset capped at the window."""
    if not decision.allowed:
        return retry_after_seconds(decision)
    return min(max(0, math.ceil(decision.reset_after)), max(1, math.ceil(decision.window)))


def rate_limit_headers(decisions: Sequence[Decision]) -> list[tuple[str, str]]:
    """`RateLimit-Policy`, `RateLimit` and, for a refusal, `Retry-After`, each at most once.

    The strictest decision (a refusal with the longest wait, else the least remaining) fills
    `RateLimit` and `Retry-After`; every distinct policy appears once in `RateLimit-Policy`.
    """
    if not decisions:
        return []
    seen: dict[str, Decision] = {}
    for decision in decisions:
        seen.setdefault(decision.policy, decision)
    binding = strictest(decisions)
    policies = ", ".join(
        f"{_sf_string(d.policy)};q={d.limit};w={max(1, math.ceil(d.window))}"
        for d in seen.values()
    )
    headers = [
        ("RateLimit-Policy", policies),
        (
            "RateLimit",
            f"{_sf_string(binding.policy)};r={binding.remaining};"
            f"t={reset_seconds(binding)}",
        ),
    ]
    if not binding.allowed:
        headers.append(("Retry-After", str(retry_after_seconds(binding))))
    return headers


def too_many_requests(decisions: Sequence[Decision]) -> RateLimitResponse:
    """The 429 for refused decisions; the body tells a spent quota from a burst limit.

    Body: `{"error": "quota_exceeded" | "rate_limited", "error_description": ...,
    "policy": name, "retry_after": seconds}`.

    Raises:
        ValueError: when `decisions` is empty.
    """
    binding = strictest(decisions)
    wait = retry_after_seconds(binding)
    if binding.kind == "quota":
        error, text = "quota_exceeded", f"the quota is exhausted; it resets in {wait} s"
    else:
        error, text = "rate_limited", f"too many requests; retry in {wait} s"
    body = {"error": error, "error_description": text, "policy": binding.policy, "retry_after": wait}
    return RateLimitResponse(
        status_code=429,
        headers=rate_limit_headers(decisions),
        body=json.dumps(body, separators=(",", ":")).encode(),
    )
