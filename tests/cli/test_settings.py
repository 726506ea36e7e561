"""Settings: one typed object from BASTION_* variables and a TOML file.

Every refusal names the setting and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, ConfigWarning, RateLimitSettings, Secret, SheddingSettings, load_settings
from bastion.ratelimit import DEFAULT_POLICIES
from tests._live import free_port
from tests.cli._run import bastion


def _load(**values: object) -> object:
    return load_settings(environ={}, overrides=values)


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("http://auth.example.test", id="public-host"),
        pytest.param("http://10.0.0.5:8000", id="private-address"),
        pytest.param("http://localhost.example.test", id="localhost-lookalike"),
        pytest.param("http://127.0.0.1.example.test", id="loopback-lookalike"),
        pytest.param("ftp://auth.example.test", id="other-scheme"),
    ],
)
def test_issuer_must_be_https_unless_loopback(issuer):
    """An issuer that is not https:// and not on a loopback host is refused, naming the setting and the fix."""
    with pytest.raises(ConfigError) as caught:
        _load(issuer=issuer)

    assert caught.value.setting == "issuer"
    assert str(caught.value) == (
        f"issuer (--issuer): {issuer} is not https:// and its host is not loopback. Fix: use an https:// issuer "
        "(tokens travel only over HTTPS), or a loopback host for development"
    )


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        pytest.param(
            "auth.example.test", "issuer (--issuer): 'auth.example.test' is not an absolute URL", id="no-scheme"
        ),
        pytest.param(
            "https://auth.example.test?x=1",
            "issuer (--issuer): must not have a query or fragment (RFC 8414 §2)",
            id="query",
        ),
        pytest.param(
            "https://auth.example.test#f",
            "issuer (--issuer): must not have a query or fragment (RFC 8414 §2)",
            id="fragment",
        ),
    ],
)
def test_issuer_must_be_an_rfc8414_identifier(issuer, message):
    """RFC 8414 §2: the issuer is an absolute https URL without query or fragment."""
    with pytest.raises(ConfigError, match="^" + message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
        _load(issuer=issuer)


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("https://auth.example.test", id="https"),
        pytest.param("https://auth.example.test/tenant-a", id="https-with-path"),
        pytest.param("http://127.0.0.1:8000", id="loopback-v4"),
        pytest.param("http://127.9.9.9:8000", id="loopback-v4-range"),
        pytest.param("http://[::1]:8000", id="loopback-v6"),
        pytest.param("http://localhost:8000", id="localhost"),
    ],
)
def test_accepted_issuers(issuer):
    """https anywhere, and plain http on loopback for development, are accepted."""
    assert load_settings(environ={}, overrides={"issuer": issuer}).issuer == issuer


@pytest.mark.parametrize("minutes", [pytest.param(0, id="0"), pytest.param(61, id="61"), pytest.param(-5, id="-5")])
def test_access_token_lifetime_outside_1_to_60_minutes_is_refused(minutes):
    """The access-token lifetime is 1-60 minutes; outside is refused with the range as the fix."""
    with pytest.raises(ConfigError) as caught:
        _load(issuer="https://auth.example.test", access_token_lifetime=minutes)

    assert caught.value.setting == "access_token_lifetime"
    assert str(caught.value) == (
        f"access_token_lifetime (--access-token-lifetime): {minutes} minutes is outside 1-60 minutes. Fix: choose a "
        "value in 1-60"
    )


@pytest.mark.parametrize("minutes", [1, 60])
def test_access_token_lifetime_bounds_are_accepted(minutes):
    """1 and 60 minutes are both valid."""
    settings = load_settings(environ={}, overrides={"issuer": "https://a.test", "access_token_lifetime": minutes})

    assert settings.access_token_lifetime == minutes


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("code_lifetime", 0, id="code_lifetime-0"),
        pytest.param("device_code_lifetime", 1801, id="device_code_lifetime-1801"),
        pytest.param("key_prepublication", -1, id="key_prepublication-negative"),
        pytest.param("client_assertion_max_lifetime", 5, id="client_assertion_max_lifetime-5"),
        pytest.param("client_secret_rotation_overlap", -1, id="overlap-negative"),
        pytest.param("client_cache_seconds", 11.0, id="client_cache_seconds-11"),
        pytest.param("clock_leeway", 301, id="clock_leeway-301"),
        pytest.param("workers", 0, id="workers-0"),
    ],
)
def test_other_lifetimes_have_validated_ranges(name, value):
    """Every lifetime is an ordinary setting with a validated range, named in the error."""
    with pytest.raises(ConfigError) as caught:
        _load(issuer="https://auth.example.test", **{name: value})

    assert caught.value.setting == name
    assert str(caught.value).startswith(f"{name} (--{name.replace('_', '-')}): {value:g} ")
    assert "Fix: choose a value in" in str(caught.value)


def test_short_lifetimes_for_tests_need_no_special_profile():
    """Tests shorten windows with ordinary settings (0 s pre-publication, 10 s assertions)."""
    settings = _load(issuer="https://a.test", key_prepublication=0, client_assertion_max_lifetime=10, code_lifetime=1)

    assert settings.key_prepublication == 0


def test_refresh_idle_longer_than_absolute_is_refused():
    """An idle lifetime longer than the absolute one makes no sense and is refused."""
    expected = r"^refresh_token_idle_lifetime \(--refresh-token-idle-lifetime\): is longer than"
    with pytest.raises(ConfigError, match=expected):
        _load(issuer="https://a.test", refresh_token_idle_lifetime=7200, refresh_token_absolute_lifetime=3600)


def test_environment_values_are_validated():
    """A BASTION_* value is coerced and validated like any other source."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"BASTION_ISSUER": "https://a.test", "BASTION_ACCESS_TOKEN_LIFETIME": "61"})
    with pytest.raises(ConfigError) as not_a_number:
        load_settings(environ={"BASTION_ISSUER": "https://a.test", "BASTION_ACCESS_TOKEN_LIFETIME": "ten"})

    assert caught.value.setting == "access_token_lifetime"
    assert str(not_a_number.value) == (
        "access_token_lifetime (BASTION_ACCESS_TOKEN_LIFETIME): 'ten' is not a whole number. "
        "Fix: write a whole number, e.g. 10"
    )


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        pytest.param("acces_token_lifetime", "did you mean 'access_token_lifetime'?", id="typo"),
        pytest.param("issuer_url", "did you mean 'issuer'?", id="near-name"),
        pytest.param("frobnicate", "remove it", id="nothing-close"),
    ],
)
def test_unknown_key_in_config_file_is_refused_naming_closest(tmp_path: Path, key, hint):
    """An unknown key in the TOML file is an error naming the file, the key and the closest setting."""
    config = tmp_path / "bastion.toml"
    config.write_text(f'issuer = "https://a.test"\n{key} = 5\n', encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, environ={})

    assert str(caught.value) == f"{key} ({config}:2): unknown setting. Fix: {hint}"


def test_unknown_environment_variable_warns_with_closest_name():
    """An unknown BASTION_* variable is ignored with a warning naming the closest known variable."""
    with pytest.warns(ConfigWarning) as caught:
        settings = load_settings(environ={"BASTION_ISSUER": "https://a.test", "BASTION_ACESS_TOKEN_LIFETIME": "5"})

    assert [str(w.message) for w in caught] == [
        "unknown environment variable BASTION_ACESS_TOKEN_LIFETIME is ignored; "
        "did you mean BASTION_ACCESS_TOKEN_LIFETIME?"
    ]
    assert settings.access_token_lifetime == 10


def test_test_and_ci_variables_do_not_warn():
    """BASTION_TEST_* and BASTION_REQUIRE_SERVICES belong to the test suite, not to settings."""
    settings = load_settings(
        environ={"BASTION_ISSUER": "https://a.test", "BASTION_TEST_POSTGRES_URL": "x", "BASTION_REQUIRE_SERVICES": "1"}
    )

    assert settings.issuer == "https://a.test"


def test_config_file_then_environment_then_overrides(tmp_path: Path):
    """Precedence: defaults < config file < environment < explicit overrides (CLI flags)."""
    config = tmp_path / "bastion.toml"
    config.write_text('issuer = "https://file.test"\naccess_token_lifetime = 5\nclock_leeway = 7\n', encoding="utf-8")
    settings = load_settings(
        config_file=config,
        environ={"BASTION_ACCESS_TOKEN_LIFETIME": "6", "BASTION_CLOCK_LEEWAY": "8"},
        overrides={"clock_leeway": 9},
    )

    assert (settings.issuer, settings.access_token_lifetime, settings.clock_leeway) == ("https://file.test", 6, 9)


def test_secrets_never_appear_in_repr():
    """repr and str of Settings mask every secret: database and Redis passwords, the KEK and the pepper."""
    settings = load_settings(
        environ={},
        overrides={
            "issuer": "https://a.test",
            "database_url": "postgresql://bastion:pg-password-123@db.internal/bastion",
            "redis_url": "redis://:redis-password-456@cache.internal:6379/0",
            "key_encryption_key": "kek-value-789-long-enough-for-production",
            "client_secret_pepper": "pepper-value-000-long-enough-for-production",
        },
    )

    for text in (repr(settings), str(settings)):
        for secret in ("pg-password-123", "redis-password-456", "kek-value-789-long-enough-for-production",
                       "pepper-value-000-long-enough-for-production"):
            assert secret not in text
    assert settings.key_encryption_key == Secret("kek-value-789-long-enough-for-production")


def test_secret_type_masks_its_value():
    """Secret's repr and str are masked; reveal() is the only way to the value."""
    secret = Secret("s3cr3t")

    assert repr(secret) == str(secret) == "Secret('**********')"
    assert f"{secret}" == "Secret('**********')"
    assert secret.reveal() == "s3cr3t"


def test_issuer_defaults_to_loopback_host_and_port():
    """Without BASTION_ISSUER the issuer is http://HOST:PORT for a loopback host."""
    settings = load_settings(environ={}, overrides={"host": "127.0.0.1", "port": 9123})

    assert settings.issuer == "http://127.0.0.1:9123"
    assert settings.audience == "http://127.0.0.1:9123/api"


def test_default_audience_setting_overrides_issuer_based_default():
    """default_audience replaces the issuer + /api default."""
    settings = _load(issuer="https://a.test", default_audience="https://api.a.test")

    assert settings.audience == "https://api.a.test"


RATELIMIT_FIX = "Fix: fix the [ratelimit.policies] table"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        pytest.param(
            "ratelimit = 5",
            "ratelimit (FILE:1): 5 is not a table. Fix: write it as a [ratelimit] table in the TOML config file",
            id="not-a-table",
        ),
        pytest.param(
            "[ratelimit.polices.x]\nlimit = '5/minute'",
            "ratelimit.polices (FILE:1): unknown setting. Fix: did you mean 'policies'?",
            id="unknown-key",
        ),
        pytest.param(
            "[ratelimit.policies.token_per_client]\nlimit = 'lots'",
            "ratelimit.policies.token_per_client.limit (FILE:2): 'lots' is not a rate; write COUNT/UNIT or COUNT per N "
            'UNITS with a unit of second, minute, hour, day, month or year, e.g. "20/minute". ' + RATELIMIT_FIX,
            id="policy-limit",
        ),
        pytest.param(
            "[ratelimit.policies.client_auth_failures_per_client]\nlimit = '5/minute'",
            "ratelimit.policies.client_auth_failures_per_client (FILE:1): this built-in policy was removed (client "
            "ids are "
            "public: anyone could lock the client out; failures are limited per source address "
            "(client_auth_failures_per_address)); remove the table. " + RATELIMIT_FIX,
            id="removed-policy",
        ),
        pytest.param(
            "[ratelimit]\nshedding = 5",
            "ratelimit.shedding (FILE:2): 5 is not a table. Fix: write it as a [ratelimit.shedding] table in the TOML "
            "config file",
            id="shedding-not-a-table",
        ),
        pytest.param(
            "[ratelimit.shedding]\nqueue_sise = 8",
            "ratelimit.shedding.queue_sise (FILE:2): unknown setting. Fix: did you mean 'queue_size'?",
            id="shedding-unknown-key",
        ),
        pytest.param(
            "[ratelimit.shedding]\nenabled = 'yes'",
            "ratelimit.shedding.enabled (FILE:2): 'yes' is not true or false. Fix: write true or false",
            id="enabled-string",
        ),
        pytest.param(
            "[ratelimit.shedding]\nlimit = 0",
            'ratelimit.shedding.limit (FILE:2): 0 is not "adaptive" or a whole number of at least 1. '
            'Fix: write "adaptive" (learnt from latency) or a fixed concurrency, e.g. 64',
            id="limit-0",
        ),
        pytest.param(
            "[ratelimit.shedding]\nlimit = 'fast'",
            "ratelimit.shedding.limit (FILE:2): 'fast' is not \"adaptive\" or a whole number of at least 1. "
            'Fix: write "adaptive" (learnt from latency) or a fixed concurrency, e.g. 64',
            id="limit-word",
        ),
        pytest.param(
            "[ratelimit.shedding]\nlimit = 2.5",
            'ratelimit.shedding.limit (FILE:2): 2.5 is not "adaptive" or a whole number of at least 1. '
            'Fix: write "adaptive" (learnt from latency) or a fixed concurrency, e.g. 64',
            id="limit-fraction",
        ),
        pytest.param(
            "[ratelimit.shedding]\nqueue_size = -1",
            "ratelimit.shedding.queue_size (FILE:2): -1 is not a whole number of at least 0. Fix: write e.g. 8 (0: no "
            "queue)",
            id="queue_size-negative",
        ),
        pytest.param(
            "[ratelimit.shedding]\nqueue_size = '8'",
            "ratelimit.shedding.queue_size (FILE:2): '8' is not a whole number of at least 0. Fix: write e.g. 8 (0: "
            "no queue)",
            id="queue_size-string",
        ),
        pytest.param(
            "[ratelimit.shedding]\nqueue_timeout = 0",
            "ratelimit.shedding.queue_timeout (FILE:2): 0 is not a number of seconds above 0. Fix: write e.g. 0.1",
            id="queue_timeout-0",
        ),
        pytest.param(
            "[ratelimit.shedding]\nqueue_timeout = inf",
            "ratelimit.shedding.queue_timeout (FILE:2): inf is not a number of seconds above 0. Fix: write e.g. 0.1",
            id="queue_timeout-inf",
        ),
        pytest.param(
            "[ratelimit.shedding]\nqueue_timeout = true",
            "ratelimit.shedding.queue_timeout (FILE:2): True is not a number of seconds above 0. Fix: write e.g. 0.1",
            id="queue_timeout-bool",
        ),
        pytest.param(
            'trusted_proxies = ["10.0.0.1", "proxy.example"]',
            "trusted_proxies (FILE:1): 'proxy.example' does not appear to be an IPv4 or IPv6 network. "
            "Fix: list the proxies' IP addresses or networks, e.g. 10.0.0.0/8,::1",
            id="trusted-proxy-name",
        ),
    ],
)
def test_serve_refuses_a_wrong_ratelimit_or_proxy_setting_naming_the_key(tmp_path: Path, toml, expected):
    """`bastion serve --config FILE` exits 2 before binding, with one line naming the key, the problem and the fix."""
    config = tmp_path / "bastion.toml"
    config.write_text(toml + "\n", encoding="utf-8")

    result = bastion("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), "--config", str(config))

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {expected}".replace("FILE", str(config))]
    assert not (tmp_path / "data").exists()  # refused before anything was written


def test_ratelimit_table_becomes_typed_settings():
    """Policies are parsed with the built-in ones (changed by name) and shedding values are typed."""
    settings = _load(
        issuer="https://a.test",
        ratelimit={
            "policies": {
                "token_per_client": {"key": ["client_id"], "limit": "100/minute", "routes": ["/token"]},
                "login_failures_per_address": {"enabled": False},
            },
            "shedding": {"enabled": True, "limit": 64, "queue_size": 0, "queue_timeout": 1},
        },
    )

    policies = {p.name: p for p in settings.ratelimit.policies}
    assert (policies["token_per_client"].limit, policies["token_per_client"].window) == (100, 60.0)
    assert "login_failures_per_address" not in policies
    assert "client_auth_failures_per_address" in policies
    assert settings.ratelimit.shedding == SheddingSettings(enabled=True, limit=64, queue_size=0, queue_timeout=1.0)


def test_ratelimit_defaults_are_the_built_in_policies_without_shedding():
    """Without a [ratelimit] table only failures are limited and nothing is shed."""
    settings = _load(issuer="https://a.test")

    assert settings.ratelimit == RateLimitSettings(policies=DEFAULT_POLICIES, shedding=SheddingSettings())
    assert settings.ratelimit.shedding.enabled is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("BASTION_DATABASE_TIMEOUT_SECONDS", "0.1",
                     "database_timeout_seconds (BASTION_DATABASE_TIMEOUT_SECONDS): 0.1 seconds is outside 0.5-60 "
                     "seconds. Fix: choose a value in 0.5-60",
                     id="database-timeout-too-short"),
        pytest.param("BASTION_DATABASE_TIMEOUT_SECONDS", "61",
                     "database_timeout_seconds (BASTION_DATABASE_TIMEOUT_SECONDS): 61 seconds is outside 0.5-60 "
                     "seconds. Fix: choose a value in 0.5-60",
                     id="database-timeout-too-long"),
        pytest.param("BASTION_DATABASE_TIMEOUT_SECONDS", "soon",
                     "database_timeout_seconds (BASTION_DATABASE_TIMEOUT_SECONDS): 'soon' is not a number."
                     " Fix: write a number, e.g. 5.0",
                     id="database-timeout-not-a-number"),
        pytest.param("BASTION_SHUTDOWN_DRAIN_SECONDS", "0",
                     "shutdown_drain_seconds (BASTION_SHUTDOWN_DRAIN_SECONDS): 0 seconds is outside 1-300 seconds. "
                     "Fix: choose a value in 1-300",
                     id="drain-zero"),
        pytest.param("BASTION_SHUTDOWN_DRAIN_SECONDS", "301",
                     "shutdown_drain_seconds (BASTION_SHUTDOWN_DRAIN_SECONDS): 301 seconds is outside 1-300 seconds. "
                     "Fix: choose a value in 1-300",
                     id="drain-too-long"),
        pytest.param("BASTION_SHUTDOWN_DRAIN_SECONDS", "2.5",
                     "shutdown_drain_seconds (BASTION_SHUTDOWN_DRAIN_SECONDS): '2.5' is not a whole number."
                     " Fix: write a whole number, e.g. 10",
                     id="drain-not-whole"),
    ],
)
def test_outage_settings_out_of_range_are_refused(variable, value, message):
    """The database timeout (0.5-60 s) and the shutdown drain (1-300 s) are refused outside their
    ranges, with the setting, the value and the fix."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"BASTION_ISSUER": "https://a.test", variable: value})

    assert str(caught.value) == message


def test_outage_settings_have_defaults_and_come_from_the_environment():
    """5 s and 10 s by default; the environment sets them like any other setting."""
    default = _load(issuer="https://a.test")
    chosen = load_settings(environ={"BASTION_ISSUER": "https://a.test", "BASTION_DATABASE_TIMEOUT_SECONDS": "0.5",
                                    "BASTION_SHUTDOWN_DRAIN_SECONDS": "300"})

    assert (default.database_timeout_seconds, default.shutdown_drain_seconds) == (5.0, 10)
    assert (chosen.database_timeout_seconds, chosen.shutdown_drain_seconds) == (0.5, 300)
