"""Settings: one typed, frozen object from `BASTION_*` environment variables and a TOML file.

Every problem is reported as a `ConfigError` naming the setting and the fix. Secrets are a type
whose repr is masked. Lifetimes are ordinary settings with validated ranges, so tests shorten
them without a weaker profile.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

SIGNING_ALGORITHMS = ("ES256", "RS256", "PS256")
# Environment variables that share the prefix but are not settings (tests, CI).
_NOT_SETTINGS = ("BASTION_REQUIRE_SERVICES", "BASTION_TEST_", "BASTION_CONFIG")


class ConfigError(ValueError):
    """A setting is wrong; the message names it and says how to fix it."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        super().__init__(f"{setting}: {problem}. Fix: {fix}")
        self.setting = setting


class ConfigWarning(UserWarning):
    """A probable mistake in the environment (an unknown BASTION_* variable)."""


class Secret:
    """A secret value; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Everything `bastion serve` and the CLI need. Build it with `load_settings`."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".bastion")
    issuer: str = ""
    database_url: Secret | None = None
    redis_url: Secret | None = None
    key_encryption_key: Secret | None = None
    client_secret_pepper: Secret | None = None
    # Lifetimes: access tokens in minutes (1-60), everything else in seconds.
    access_token_lifetime: int = 10
    code_lifetime: int = 60
    device_code_lifetime: int = 600
    device_poll_interval: int = 5
    refresh_token_idle_lifetime: int = 14 * 86400
    refresh_token_absolute_lifetime: int = 90 * 86400
    key_prepublication: int = 86400
    client_assertion_max_lifetime: int = 300
    client_secret_rotation_overlap: int = 0
    client_cache_seconds: float = 2.0
    key_cache_seconds: float = 2.0
    clock_leeway: int = 30
    access_token_algorithm: Literal["ES256", "RS256", "PS256"] = "ES256"  # noqa: S105 - an algorithm name, not a password
    default_audience: str = ""
    behind_proxy: bool = False
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    workers: int = 1
    metrics: Literal["auto", "on", "off"] = "auto"
    # The example API at /demo with seeded demo users; only ever in development mode.
    demo: bool = True
    log_level: str = "info"
    ratelimit: Mapping[str, Any] = field(default_factory=dict)
    # People (issue 3): browser sessions time out after idle/absolute seconds; `testing` password
    # hashing uses cheap Argon2id parameters for test suites and `serve` refuses it.
    session_idle_lifetime: int = 1800
    session_absolute_lifetime: int = 12 * 3600
    password_hashing: Literal["owasp", "testing"] = "owasp"  # noqa: S105 - a profile name, not a password

    def __post_init__(self) -> None:
        for check in _CHECKS:
            check(self)

    @property
    def development_mode(self) -> bool:
        """The embedded default: SQLite in the data directory and a loopback issuer."""
        host = urlsplit(self.issuer).hostname or ""
        return self.resolved_database_url.startswith("sqlite") and is_loopback_host(host)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'bastion.db').resolve()}"
        return normalise_database_url(self.database_url.reveal())

    @property
    def metrics_enabled(self) -> bool:
        """`/metrics` is off by default on public listeners: `auto` serves it on loopback only."""
        if self.metrics == "auto":
            return is_loopback_host(self.host)
        return self.metrics == "on"

    @property
    def audience(self) -> str:
        return self.default_audience or self.issuer.rstrip("/") + "/api"


def normalise_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def _check_issuer(s: Settings) -> None:
    parts = urlsplit(s.issuer)
    if not s.issuer or not parts.scheme or not parts.hostname:
        raise ConfigError("issuer", f"{s.issuer!r} is not an absolute URL", "set BASTION_ISSUER=https://your.host")
    if parts.query or parts.fragment:
        raise ConfigError("issuer", "must not have a query or fragment (RFC 8414 §2)", "remove them")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        raise ConfigError(
            "issuer",
            f"{s.issuer} is not https:// and its host is not loopback",
            "use an https:// issuer (tokens travel only over HTTPS), or a loopback host for development",
        )


def _range(name: str, low: float, high: float, unit: str) -> Callable[[Settings], None]:
    def check(s: Settings) -> None:
        value = getattr(s, name)
        if not low <= value <= high:
            raise ConfigError(
                name, f"{value} {unit} is outside {low:g}-{high:g} {unit}", f"choose a value in {low:g}-{high:g}"
            )

    return check


def _check_algorithm(s: Settings) -> None:
    if s.access_token_algorithm not in SIGNING_ALGORITHMS:
        raise ConfigError(
            "access_token_algorithm",
            f"{s.access_token_algorithm!r} is not supported",
            f"use one of {', '.join(SIGNING_ALGORITHMS)}",
        )


def _check_metrics(s: Settings) -> None:
    if s.metrics not in ("auto", "on", "off"):
        raise ConfigError("metrics", f"{s.metrics!r} is not auto, on or off", "use auto (loopback only), on or off")


def _check_refresh(s: Settings) -> None:
    if s.refresh_token_idle_lifetime > s.refresh_token_absolute_lifetime:
        raise ConfigError(
            "refresh_token_idle_lifetime",
            "is longer than refresh_token_absolute_lifetime",
            "make the idle lifetime shorter",
        )


def _check_password_hashing(s: Settings) -> None:
    if s.password_hashing not in ("owasp", "testing"):
        raise ConfigError(
            "password_hashing",
            f"{s.password_hashing!r} is not owasp or testing",
            "use owasp (testing is for test suites)",
        )


_CHECKS: tuple[Callable[[Settings], None], ...] = (
    _check_issuer,
    _check_algorithm,
    _range("access_token_lifetime", 1, 60, "minutes"),
    _range("code_lifetime", 1, 600, "seconds"),
    _range("device_code_lifetime", 5, 1800, "seconds"),
    _range("device_poll_interval", 1, 60, "seconds"),
    _range("refresh_token_idle_lifetime", 60, 365 * 86400, "seconds"),
    _range("refresh_token_absolute_lifetime", 60, 3 * 365 * 86400, "seconds"),
    _range("key_prepublication", 0, 30 * 86400, "seconds"),
    _range("client_assertion_max_lifetime", 10, 3600, "seconds"),
    _range("client_secret_rotation_overlap", 0, 30 * 86400, "seconds"),
    _range("client_cache_seconds", 0, 10, "seconds"),
    _range("key_cache_seconds", 0, 10, "seconds"),
    _range("clock_leeway", 0, 300, "seconds"),
    _range("port", 0, 65535, ""),
    _range("workers", 1, 64, "workers"),
    _check_refresh,
    _check_metrics,
    _range("session_idle_lifetime", 60, 7 * 86400, "seconds"),
    _range("session_absolute_lifetime", 60, 30 * 86400, "seconds"),
    _check_password_hashing,
)

_FIELDS = {f.name: f for f in fields(Settings)}
_SECRET_FIELDS = {"database_url", "redis_url", "key_encryption_key", "client_secret_pepper"}


def _coerce(name: str, raw: Any) -> Any:
    kind = _FIELDS[name].type
    try:
        if name in _SECRET_FIELDS:
            return None if raw in ("", None) else Secret(str(raw))
        if name == "data_dir":
            return Path(str(raw))
        if name == "trusted_proxies":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if name == "ratelimit":
            if not isinstance(raw, Mapping):
                raise TypeError("must be a table")
            return dict(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in {"1", "true", "yes", "on"}:
                return True
            if str(raw).lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "int":
            if isinstance(raw, bool):
                raise TypeError(raw)
            return int(raw)
        if kind == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, f"{raw!r} is not a valid {kind}", f"give {name} a {kind} value") from exc


def _closest(name: str) -> str:
    match = difflib.get_close_matches(name, _FIELDS, n=1, cutoff=0.5)
    return match[0] if match else ""


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML config file; an unknown key is an error naming the closest known setting."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("--config", f"{path} does not exist", "pass an existing TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML ({exc})", "fix the TOML syntax") from exc
    for key in data:
        if key not in _FIELDS:
            near = _closest(key)
            fix = f"did you mean {near!r}?" if near else "remove it"
            raise ConfigError(f"{path}: {key}", "unknown setting", fix)
    return data


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """`BASTION_*` variables as settings; an unknown one gets a warning naming the closest."""
    values: dict[str, Any] = {}
    for variable, raw in environ.items():
        if not variable.startswith("BASTION_") or variable.startswith(_NOT_SETTINGS):
            continue
        name = variable.removeprefix("BASTION_").lower()
        if name in _FIELDS:
            values[name] = raw
            continue
        near = _closest(name)
        hint = f"; did you mean BASTION_{near.upper()}?" if near else ""
        warnings.warn(f"unknown environment variable {variable} is ignored{hint}", ConfigWarning, stacklevel=2)
    return values


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings: defaults < config file < environment < explicit overrides (CLI flags).

    When no issuer is configured it defaults to `http://HOST:PORT` for a loopback host, or to
    the issuer that `serve` recorded in the data directory.
    """
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get("BASTION_CONFIG"):
        config_file = Path(environ["BASTION_CONFIG"])
    raw: dict[str, Any] = {}
    if config_file is not None:
        raw.update(read_config_file(config_file))
    raw.update(read_environment(environ))
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values = {name: _coerce(name, value) for name, value in raw.items()}
    if not values.get("issuer"):
        data_dir = values.get("data_dir", Settings.data_dir)
        recorded = data_dir / "issuer"
        if "host" not in values and "port" not in values and recorded.exists():
            values["issuer"] = recorded.read_text(encoding="utf-8").strip()
        else:
            host = str(values.get("host", Settings.host))
            port = int(values.get("port", Settings.port))
            shown = f"[{host}]" if ":" in host else host
            values["issuer"] = f"http://{shown}:{port}"
    return Settings(**values)


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)


__all__ = [
    "ConfigError",
    "ConfigWarning",
    "Secret",
    "Settings",
    "is_loopback_host",
    "load_settings",
    "normalise_database_url",
    "read_config_file",
    "with_overrides",
]
