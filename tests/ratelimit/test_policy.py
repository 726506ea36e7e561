"""Policies from configuration data: defaults, overrides, and errors that name key and fix."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.ratelimit import Policy, PolicyError, default_policies, parse_policies


def test_defaults_limit_failures_and_anonymous_storage() -> None:
    """With no configuration, failed authentications, user-code entry and what anonymous requests
    make the server store are limited, and nothing else."""
    assert {p.name: (p.limit, p.window, p.key) for p in parse_policies({})} == {
        "client_auth_failures_per_address": (20, 60.0, ("source_address",)),
        "login_failures_per_device": (10, 900.0, ("device",)),
        "login_failures_per_account_address": (3, 60.0, ("sub", "source_address")),
        "login_failures_per_account": (10, 900.0, ("sub",)),
        "login_failures_per_address": (50, 900.0, ("source_address",)),
        "second_factor_failures_per_account": (10, 900.0, ("sub",)),
        "device_user_code_per_address": (10, 60.0, ("source_address",)),
        "anonymous_requests_per_address": (60, 60.0, ("source_address",)),
    }
    assert all(not p.routes for p in default_policies())


def test_no_default_is_keyed_on_a_public_identifier_alone() -> None:
    """No built-in policy counts failures by client_id alone: anyone knows a client's id, so such
    a limit would let a stranger lock the client out (usernames are judged in the server, per
    device cookie or with the address)."""
    assert [p.name for p in default_policies() if p.key == ("client_id",)] == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("client_auth_failures_per_client", "client ids are public", id="per-client"),
        pytest.param("login_failures_per_account_burst", "keyed on the account alone", id="account-burst"),
    ],
)
def test_a_removed_default_is_refused_with_its_reason(name: str, reason: str) -> None:
    """Configuring a built-in policy that was removed names it, the reason and the fix; disabling it is accepted."""
    with pytest.raises(PolicyError) as refused:
        parse_policies({name: {"limit": "5/minute"}})

    assert str(refused.value).startswith(f"policies.{name}: this built-in policy was removed ({reason}")
    assert str(refused.value).endswith("; remove the table")
    assert name not in {p.name for p in parse_policies({name: {"enabled": False}})}


def test_a_full_policy_table_parses() -> None:
    """Every key of a policy table lands in the Policy."""
    [policy] = parse_policies(
        {
            "token_per_client": {
                "key": ["client_id", "route"],
                "limit": "100 per 2 minutes",
                "algorithm": "gcra",
                "burst": 20,
                "kind": "burst",
                "on_store_error": "closed",
                "routes": ["/token", "/api/*"],
                "methods": ["post"],
            }
        },
        defaults=False,
    )
    assert policy == Policy(
        "token_per_client", 100, 120.0, "gcra", burst=20, kind="burst",
        key=("client_id", "route"), on_store_error="closed", routes=("/token", "/api/*"),
        methods=("POST",),
    )


def test_a_monthly_calendar_quota_parses() -> None:
    """A per-month fixed-window quota may be aligned to calendar months."""
    [policy] = parse_policies(
        {"monthly": {"limit": "10000/month", "algorithm": "fixed_window", "kind": "quota",
                     "calendar": True, "key": "client_id"}},
        defaults=False,
    )
    assert (policy.calendar, policy.kind, policy.limit, policy.key) == (
        "month", "quota", 10000, ("client_id",),
    )


def test_a_default_can_be_tightened_or_removed() -> None:
    """A table named like a default overrides the fields it sets; enabled = false removes it."""
    policies = {
        p.name: p
        for p in parse_policies({
            "client_auth_failures_per_address": {"limit": "5/minute"},
            "device_user_code_per_address": {"enabled": False},
        })
    }
    assert (policies["client_auth_failures_per_address"].limit,
            policies["client_auth_failures_per_address"].algorithm) == (5, "gcra")
    assert "device_user_code_per_address" not in policies


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"p": {}}, 'policies.p.limit: required, e.g. limit = "20/minute"',
                     id="no-limit"),
        pytest.param(
            {"p": {"limit": "20/fortnight"}},
            "policies.p.limit: '20/fortnight' is not a rate; write COUNT/UNIT or COUNT per N"
            " UNITS with a unit of second, minute, hour, day, month or year, e.g. \"20/minute\"",
            id="bad-unit",
        ),
        pytest.param({"p": {"limit": 20}},
                     'policies.p.limit: expected a string such as "20/minute" or "1000 per day"',
                     id="limit-not-string"),
        pytest.param({"p": {"limit": "0/minute"}},
                     "policies.p.limit: '0/minute' must allow at least 1 request per non-empty"
                     " window", id="zero-limit"),
        pytest.param({"p": {"limit": "1/minute", "algorithm": "leaky"}},
                     "policies.p.algorithm: 'leaky' is not one of fixed_window, gcra,"
                     " sliding_log, sliding_window, token_bucket", id="bad-algorithm"),
        pytest.param({"p": {"limit": "1/minute", "key": ["ip"]}},
                     "policies.p.key: 'ip' is not one of api_key_id, client_id, device, route,"
                     " source_address, sub", id="bad-key"),
        pytest.param({"p": {"limit": "1/minute", "key": []}},
                     "policies.p.key: name at least one of api_key_id, client_id, device, route,"
                     " source_address, sub", id="empty-key"),
        pytest.param({"p": {"limit": "1/minute", "burst": 0, "algorithm": "gcra"}},
                     "policies.p.burst: expected a whole number of at least 1, got 0",
                     id="zero-burst"),
        pytest.param({"p": {"limit": "1/minute", "burst": 5}},
                     "policies.p.burst: only token_bucket and gcra have a burst; remove it or"
                     ' set algorithm = "gcra"', id="burst-on-window"),
        pytest.param({"p": {"limit": "1/minute", "on_store_error": "fail"}},
                     "policies.p.on_store_error: 'fail' is not one of closed, open",
                     id="bad-failure-mode"),
        pytest.param({"p": {"limit": "1/minute", "window": 60}},
                     "policies.p.window: unknown key; known keys: algorithm, burst, calendar,"
                     " enabled, key, kind, limit, methods, on_store_error, routes",
                     id="unknown-key"),
        pytest.param({"p": {"limit": "5/day", "calendar": True}},
                     'policies.p.calendar: only fixed_window counts calendar periods; set'
                     ' algorithm = "fixed_window"', id="calendar-sliding"),
        pytest.param({"p": {"limit": "5/hour", "calendar": True, "algorithm": "fixed_window"}},
                     'policies.p.calendar: needs a limit per day, month or year, e.g. limit ='
                     ' "10000/month"', id="calendar-hour"),
        pytest.param({"P q": {"limit": "1/minute"}},
                     "policies.P q: a name is 1-64 of a-z 0-9 _ . - starting with a letter",
                     id="bad-name"),
        pytest.param({"p": "1/minute"}, 'policies.p: expected a table, e.g. {limit = "20/minute"}',
                     id="not-a-table"),
        pytest.param({"p": {"limit": "1/minute", "routes": [1]}},
                     "policies.p.routes: expected a list of strings", id="routes-not-strings"),
    ],
)
def test_invalid_policy_names_key_and_fix(data: dict[str, Any], message: str) -> None:
    """An invalid policy table raises PolicyError naming the key and the fix."""
    with pytest.raises(PolicyError) as caught:
        parse_policies(data)
    assert str(caught.value) == message
