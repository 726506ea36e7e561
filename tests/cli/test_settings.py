"""Settings (issue 2): one typed object from BASTION_* variables and a TOML file.

Every refusal names the setting and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, ConfigWarning, Secret, load_settings


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
        f"issuer: {issuer} is not https:// and its host is not loopback. Fix: use an https:// issuer "
        "(tokens travel only over HTTPS), or a loopback host for development"
    )


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        pytest.param("auth.example.test", "issuer: 'auth.example.test' is not an absolute URL", id="no-scheme"),
        pytest.param(
            "https://auth.example.test?x=1", "issuer: must not have a query or fragment (RFC 8414 §2)", id="query"
        ),
        pytest.param(
            "https://auth.example.test#f", "issuer: must not have a query or fragment (RFC 8414 §2)", id="fragment"
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
        f"access_token_lifetime: {minutes} minutes is outside 1-60 minutes. Fix: choose a value in 1-60"
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
    assert str(caught.value).startswith(f"{name}: {value} ")
    assert "Fix: choose a value in" in str(caught.value)


def test_short_lifetimes_for_tests_need_no_special_profile():
    """Tests shorten windows with ordinary settings (0 s pre-publication, 10 s assertions)."""
    settings = _load(issuer="https://a.test", key_prepublication=0, client_assertion_max_lifetime=10, code_lifetime=1)

    assert settings.key_prepublication == 0


def test_refresh_idle_longer_than_absolute_is_refused():
    """An idle lifetime longer than the absolute one makes no sense and is refused."""
    with pytest.raises(ConfigError, match=r"^refresh_token_idle_lifetime: is longer than"):
        _load(issuer="https://a.test", refresh_token_idle_lifetime=7200, refresh_token_absolute_lifetime=3600)


def test_environment_values_are_validated():
    """A BASTION_* value is coerced and validated like any other source."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"BASTION_ISSUER": "https://a.test", "BASTION_ACCESS_TOKEN_LIFETIME": "61"})
    with pytest.raises(ConfigError) as not_a_number:
        load_settings(environ={"BASTION_ISSUER": "https://a.test", "BASTION_ACCESS_TOKEN_LIFETIME": "ten"})

    assert caught.value.setting == "access_token_lifetime"
    assert str(not_a_number.value) == (
        "access_token_lifetime: 'ten' is not a valid int. Fix: give access_token_lifetime a int value"
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

    assert str(caught.value) == f"{config}: {key}: unknown setting. Fix: {hint}"


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
            "key_encryption_key": "kek-value-789",
            "client_secret_pepper": "pepper-value-000",
        },
    )

    for text in (repr(settings), str(settings)):
        for secret in ("pg-password-123", "redis-password-456", "kek-value-789", "pepper-value-000"):
            assert secret not in text
    assert settings.key_encryption_key == Secret("kek-value-789")


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
