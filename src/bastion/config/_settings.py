"""`Settings` and the checks run whenever one is built, whatever its sources.

Lifetimes are ordinary settings with validated ranges, so tests shorten them without a weaker
profile; a check that fails raises a `ConfigError` naming the setting and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bastion.config._pages import PageSettings
from bastion.config._ratelimit import RateLimitSettings
from bastion.config._types import ConfigError, Secret, is_loopback_host
from bastion.guard.request_id import TrustedPeers

SIGNING_ALGORITHMS = ("ES256", "RS256", "PS256")
MFA_POLICIES = ("off", "optional", "required", "roles")
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,63}")


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
    # Who may read /metrics: the client address (behind a proxy, the one the proxy forwards).
    metrics_clients: tuple[str, ...] = ("127.0.0.1", "::1")
    # JSON lines, one per request: off, stdout, or a file path (appended to).
    access_log: str = "off"
    # The example API at /demo with seeded demo users; only ever in development mode.
    demo: bool = True
    log_level: str = "info"
    ratelimit: RateLimitSettings = field(default_factory=RateLimitSettings)
    # `[pages]`: the product name, logo and colours of the pages, and scope descriptions.
    pages: PageSettings = field(default_factory=PageSettings)
    # Browser sessions time out after idle/absolute seconds; `testing` password hashing uses
    # cheap Argon2id parameters for test suites, and `serve` refuses it.
    session_idle_lifetime: int = 1800
    session_absolute_lifetime: int = 12 * 3600
    # A browser that completed a sign-in is recognised for this long by its device cookie, and
    # judged by its own failed sign-ins only (SECURITY.md, "Lockouts").
    device_cookie_lifetime: int = 90 * 86400
    # Seconds between sweeps of expired rows by each server process (jittered; `bastion db purge`
    # does the same on demand).
    purge_interval: int = 300
    password_hashing: Literal["owasp", "testing"] = "owasp"  # noqa: S105 - a profile name, not a password
    # Who must sign in with a second factor (README, "Enable MFA"): nobody by policy (`off`),
    # nobody but users may enrol when offered (`optional`), everyone (`required`), or holders of
    # `mfa_roles` (`roles`). Under every policy a user or client marked `require_mfa`, a request
    # with acr_values=urn:bastion:acr:mfa, and an account with a factor enrolled still need it.
    mfa: Literal["off", "optional", "required", "roles"] = "roles"
    mfa_roles: tuple[str, ...] = ("admin",)
    # Outages (docs/operations.md): the longest a request waits for a database connection (pool
    # checkout, connect) or a statement before it is answered 503; and the seconds a stopping
    # process (SIGTERM) lets requests in flight finish before it closes their connections.
    database_timeout_seconds: float = 5.0
    shutdown_drain_seconds: int = 10
    # Where each value came from (`BASTION_PORT`, `--port`, `bastion.toml:3`), for messages:
    # filled in by `load_settings`, never a setting itself.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for check in _CHECKS:
            try:
                check(self)
            except ConfigError as exc:
                raise exc.came_from(self.sources.get(exc.setting.split(".")[0])) from None

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


def _range(name: str, low: float, high: float, unit: str = "") -> Callable[[Settings], None]:
    def check(s: Settings) -> None:
        value = getattr(s, name)
        if not low <= value <= high:
            unit_ = f" {unit}" if unit else ""
            raise ConfigError(
                name, f"{value:g}{unit_} is outside {low:g}-{high:g}{unit_}", f"choose a value in {low:g}-{high:g}"
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


def _check_metrics_clients(s: Settings) -> None:
    try:
        TrustedPeers(s.metrics_clients)
    except ValueError as exc:
        raise ConfigError(
            "metrics_clients", str(exc), "list the scrapers' IP addresses or networks, e.g. 127.0.0.1,::1,10.0.0.9"
        ) from None


def _check_access_log(s: Settings) -> None:
    if not s.access_log.strip():
        raise ConfigError("access_log", "is empty", "use off, stdout or a file path")
    if s.access_log not in ("off", "stdout") and not Path(s.access_log).parent.is_dir():
        raise ConfigError(
            "access_log", f"the directory of {s.access_log} does not exist", "create it, or use off or stdout"
        )


def _check_mfa(s: Settings) -> None:
    if s.mfa not in MFA_POLICIES:
        raise ConfigError("mfa", f"{s.mfa!r} is not off, optional, required or roles", "use one of those")
    for role in s.mfa_roles:
        if not _ROLE.fullmatch(role):
            raise ConfigError("mfa_roles", f"{role!r} is not a role name", "use letters, digits or : . _ -")
    if s.mfa == "roles" and not s.mfa_roles:
        raise ConfigError(
            "mfa_roles",
            "is empty, so mfa=roles would require a second factor of nobody",
            "name the roles, e.g. admin,auditor, or set mfa=off or optional",
        )


def _check_trusted_proxies(s: Settings) -> None:
    fix = "list the proxies' IP addresses or networks, e.g. 10.0.0.0/8,::1"
    try:
        TrustedPeers(s.trusted_proxies)
    except ValueError as exc:
        raise ConfigError("trusted_proxies", str(exc), fix) from None
    for entry in s.trusted_proxies:
        # Trusting every peer lets any client forge X-Forwarded-For (its address for rate limits
        # and logs) and X-Forwarded-Proto (RFC 9700 §4.13): name the proxies themselves.
        if entry == "*" or ipaddress.ip_network(entry, strict=False).prefixlen == 0:
            raise ConfigError(
                "trusted_proxies", f"{entry} trusts every address, so any client could forge forwarded headers", fix
            )


# Values shipped as placeholders (deploy/bastion.env.example) or too short to key anything.
_PLACEHOLDER = "CHANGE_ME"
_SECRET_MIN_BYTES = 32


def _check_secrets(s: Settings) -> None:
    """Outside development mode the key-encryption key and the pepper must be real secrets:
    not the example's placeholder, and at least 32 bytes."""
    if s.development_mode:
        return
    fixes = {
        "key_encryption_key": "set BASTION_KEY_ENCRYPTION_KEY to 32 random bytes in base64url "
        '(python3 -c "import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())")',
        "client_secret_pepper": "set BASTION_CLIENT_SECRET_PEPPER to a long random string "
        '(python3 -c "import secrets;print(secrets.token_urlsafe(32))")',
    }
    for name, fix in fixes.items():
        secret = getattr(s, name)
        if secret is None:
            continue  # required at start-up (keys.startup), where development mode may make one
        value = secret.reveal()
        if _PLACEHOLDER.lower() in value.lower():
            raise ConfigError(name, f"is still the placeholder {_PLACEHOLDER}", fix)
        if len(value.encode()) < _SECRET_MIN_BYTES:
            raise ConfigError(name, f"is shorter than {_SECRET_MIN_BYTES} bytes", fix)


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
    _range("port", 0, 65535),
    _range("workers", 1, 64, "workers"),
    _check_refresh,
    _check_metrics,
    _range("session_idle_lifetime", 60, 7 * 86400, "seconds"),
    _range("session_absolute_lifetime", 60, 30 * 86400, "seconds"),
    # Browsers cap a cookie's Max-Age at 400 days (RFC 6265bis §5.6.2).
    _range("device_cookie_lifetime", 60, 400 * 86400, "seconds"),
    _range("purge_interval", 1, 86400, "seconds"),
    _check_password_hashing,
    _check_trusted_proxies,
    _check_secrets,
    _range("database_timeout_seconds", 0.5, 60, "seconds"),
    _range("shutdown_drain_seconds", 1, 300, "seconds"),
    _check_metrics_clients,
    _check_access_log,
    _check_mfa,
)
