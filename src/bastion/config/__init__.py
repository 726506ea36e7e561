"""Settings: one typed, frozen object from `BASTION_*` environment variables and a TOML file.

Every problem is reported as a `ConfigError` naming the setting and the fix. Secrets are a type
whose repr is masked. Lifetimes are ordinary settings with validated ranges, so tests shorten
them without a weaker profile. `[ratelimit]` is typed and checked like the rest.
"""

from bastion.config._load import DERIVED_ISSUER, load_settings, read_config_file, record_issuer, recorded_issuer
from bastion.config._pages import PageSettings, parse_pages
from bastion.config._ratelimit import RateLimitSettings, SheddingSettings
from bastion.config._settings import Settings, normalise_database_url
from bastion.config._types import ConfigError, ConfigWarning, Secret, is_loopback_host

__all__ = [
    "DERIVED_ISSUER",
    "ConfigError",
    "ConfigWarning",
    "PageSettings",
    "RateLimitSettings",
    "Secret",
    "Settings",
    "SheddingSettings",
    "is_loopback_host",
    "load_settings",
    "normalise_database_url",
    "parse_pages",
    "read_config_file",
    "record_issuer",
    "recorded_issuer",
]
