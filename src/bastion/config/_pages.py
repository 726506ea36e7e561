"""`[pages]`: what the sign-in pages show: the product's name, its logo and colours, and the
words for each scope on the consent page.

Every value ends up in a page, so each is checked as strictly as its place needs: a colour is
`#rgb` or `#rrggbb` and nothing else (it is written into a stylesheet, where anything more could
be CSS); a logo is an `https://` URL (its origin joins the pages' `img-src`) or an image file
served by the server; names and descriptions are plain text, autoescaped where they are shown,
without control characters. A wrong value stops `serve` before it binds, naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bastion.config._types import ConfigError, refuse_unknown

_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The image types a logo file may be, by suffix; anything else could be a page of our origin.
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}
LOGO_MAX_BYTES = 256 * 1024
_KEYS = ("product_name", "logo", "accent_colour", "background_colour", "text_colour", "scopes")


@dataclass(frozen=True, slots=True)
class PageSettings:
    """`[pages]`: branding and scope descriptions (README, "Branding the pages")."""

    product_name: str = "Bastion"
    logo: str = ""  # "" none; an https:// URL; or an image file the server serves at /branding/logo
    accent_colour: str = ""
    background_colour: str = ""
    text_colour: str = ""
    scopes: tuple[tuple[str, str], ...] = field(default=())  # scope -> its words on the consent page

    @property
    def logo_is_url(self) -> bool:
        return self.logo.startswith("https://")

    @property
    def scope_words(self) -> dict[str, str]:
        return dict(self.scopes)


def parse_pages(raw: object) -> PageSettings:
    """The `[pages]` table as checked settings.

    Raises:
        ConfigError: naming the key (e.g. `pages.accent_colour`), the problem and the fix.
    """
    if isinstance(raw, PageSettings):
        return raw
    if not isinstance(raw, Mapping):
        raise ConfigError("pages", f"{raw!r} is not a table", "write it as a [pages] table in the TOML config file")
    refuse_unknown(raw, _KEYS, lambda key: f"pages.{key}", f"use {', '.join(_KEYS)}")
    default = PageSettings()
    return PageSettings(
        product_name=_text("pages.product_name", raw.get("product_name", default.product_name), 60),
        logo=_logo(raw.get("logo", "")),
        accent_colour=_colour("pages.accent_colour", raw.get("accent_colour", "")),
        background_colour=_colour("pages.background_colour", raw.get("background_colour", "")),
        text_colour=_colour("pages.text_colour", raw.get("text_colour", "")),
        scopes=_scopes(raw.get("scopes", {})),
    )


def _text(name: str, value: object, longest: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(name, f"{value!r} is not a non-empty string", "write some text in quotes")
    if len(value) > longest:
        raise ConfigError(name, f"is {len(value)} characters long", f"keep it to {longest} characters")
    if _CONTROL.search(value):
        raise ConfigError(name, "contains a control character", "write it on one line, as plain text")
    return value.strip()


def _colour(name: str, value: object) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or not _COLOUR.fullmatch(value):
        raise ConfigError(name, f"{value!r} is not a colour like #1f5fbf or #15b", "write #rgb or #rrggbb")
    return value.lower()


def _logo(value: object) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or _CONTROL.search(value) or any(c in value for c in " \"'<>\\`"):
        raise ConfigError("pages.logo", f"{value!r} is not a URL or a file path", "write an https:// URL or a path")
    if "://" in value or value.startswith(("data:", "javascript:", "//")):
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
            raise ConfigError(
                "pages.logo", f"{value!r} is not an https:// URL", "use https://host/logo.png, or an image file"
            )
        return value
    path = Path(value)
    if path.suffix.lower() not in LOGO_TYPES:
        raise ConfigError("pages.logo", f"{value} is not an image file", f"use a {', '.join(LOGO_TYPES)} file")
    if not path.is_file():
        raise ConfigError("pages.logo", f"{value} does not exist", "give the path of an existing image file")
    if path.stat().st_size > LOGO_MAX_BYTES:
        raise ConfigError("pages.logo", f"{value} is larger than {LOGO_MAX_BYTES // 1024} KiB", "use a smaller image")
    return str(path.resolve())


def _scopes(raw: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError("pages.scopes", f"{raw!r} is not a table", 'write [pages.scopes] with "scope" = "words"')
    words = []
    for scope, text in raw.items():
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ConfigError(
                f"pages.scopes.{scope}", "is not a scope name (RFC 6749 §3.3)", "use the scope as clients ask for it"
            )
        words.append((scope, _text(f"pages.scopes.{scope}", text, 200)))
    return tuple(words)


__all__ = ["LOGO_MAX_BYTES", "LOGO_TYPES", "PageSettings", "parse_pages"]
