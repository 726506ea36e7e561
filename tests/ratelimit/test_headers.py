"""429 rendering: Retry-After, RateLimit and RateLimit-Policy once each, strictest wins."""

from __future__ import annotations

import json

import pytest

from bastion.ratelimit import Decision, rate_limit_headers, strictest, too_many_requests


def decision(policy: str, *, allowed: bool, remaining: int = 0, retry: float = 0.0,
             reset: float = 0.0, kind: str = "burst", limit: int = 10,
             window: float = 60.0) -> Decision:
    return Decision(allowed=allowed, policy=policy, kind=kind, limit=limit,  # type: ignore[arg-type]  # algorithm and mode names are plain str here
                    window=window, remaining=remaining, reset_after=reset, retry_after=retry)


def test_stacked_policies_render_each_field_once_with_the_strictest() -> None:
    """Three policies give one RateLimit-Policy listing each, one RateLimit and one Retry-After."""
    decisions = [
        decision("per_minute", allowed=True, remaining=4, reset=12.5),
        decision("per_second", allowed=False, retry=0.2, reset=0.9, limit=5, window=1.0),
        decision("per_day", allowed=False, retry=3600.0, reset=7200.0, limit=1000,
                 window=86400.0, kind="quota"),
        decision("per_minute", allowed=True, remaining=4, reset=12.5),
    ]
    assert rate_limit_headers(decisions) == [
        ("RateLimit-Policy",
         '"per_minute";q=10;w=60, "per_second";q=5;w=1, "per_day";q=1000;w=86400'),
        ("RateLimit", '"per_day";r=0;t=3600'),
        ("Retry-After", "3600"),
    ]


def test_admitted_requests_get_the_least_remaining_and_no_retry_after() -> None:
    """When everything admits, RateLimit reports the policy closest to its limit."""
    headers = rate_limit_headers([
        decision("a", allowed=True, remaining=7, reset=3.0),
        decision("b", allowed=True, remaining=2, reset=40.2),
    ])
    assert headers == [
        ("RateLimit-Policy", '"a";q=10;w=60, "b";q=10;w=60'),
        ("RateLimit", '"b";r=2;t=41'),
    ]


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        pytest.param(decision("gcra", allowed=False, retry=11.2, reset=60.0), '"gcra";r=0;t=12',
                     id="refusal-is-retry-after"),
        pytest.param(decision("sliding", allowed=True, remaining=3, reset=102.0), '"sliding";r=3;t=60',
                     id="capped-at-window"),
        pytest.param(decision("short", allowed=True, remaining=9, reset=0.2, window=1.0), '"short";r=9;t=1',
                     id="rounded-up"),
    ],
)
def test_reset_agrees_with_retry_after_and_the_window(made: Decision, expected: str) -> None:
    """`t` is Retry-After on a refusal and never more than `w` when admitted."""
    headers = dict(rate_limit_headers([made]))
    assert headers["RateLimit"] == expected
    if not made.allowed:
        assert headers["Retry-After"] == expected.rsplit("t=", 1)[1]


@pytest.mark.parametrize(
    ("kind", "error", "description"),
    [
        pytest.param("burst", "rate_limited", "too many requests; retry in 1 s", id="burst"),
        pytest.param("quota", "quota_exceeded", "the quota is exhausted; it resets in 1 s",
                     id="quota"),
    ],
)
def test_body_distinguishes_quota_from_burst(kind: str, error: str, description: str) -> None:
    """The 429 body says whether a quota or a burst limit refused, with the wait rounded up."""
    response = too_many_requests([decision("p", allowed=False, retry=0.000001, kind=kind)])
    assert response.status_code == 429
    assert json.loads(response.body) == {
        "error": error, "error_description": description, "policy": "p", "retry_after": 1,
    }
    assert ("Retry-After", "1") in response.headers


def test_strictest_prefers_the_longest_refusal() -> None:
    """A refusal beats any admission, and the longer wait beats the shorter."""
    short = decision("short", allowed=False, retry=1.0)
    long = decision("long", allowed=False, retry=9.0)
    assert strictest([decision("ok", allowed=True), short, long]) is long


def test_strictest_of_nothing_is_an_error() -> None:
    """strictest() refuses an empty list rather than inventing a decision."""
    with pytest.raises(ValueError, match="at least one decision"):
        strictest([])
