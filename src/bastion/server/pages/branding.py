"""The pages' branding (`[pages]`): the product name and logo every page shows, the colours of
`/branding.css`, and the Content-Security-Policy that lets exactly that logo load.

Colours reach the pages through a stylesheet of our own origin, never an inline `style`, so the
CSP keeps refusing inline style; a colour is `#rgb`/`#rrggbb` (checked with the settings), so the
stylesheet cannot be made to say anything else. A logo URL adds its origin, and only it, to
`img-src`; a logo file is served at `/branding/logo` with its image type, `nosniff`, and a CSP
of its own (`sandbox`), so an SVG opened on its own runs nothing.

The app's `BrandingMiddleware` makes its `Branding` the current one for each request; `render`
reads it from there, so the many places that render a page need not carry it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.config import PageSettings
from bastion.config._pages import LOGO_TYPES

BASE_CSP = "default-src 'self'; frame-ancestors 'none'"
LOGO_PATH = "/branding/logo"


@dataclass(frozen=True, slots=True)
class Branding:
    """What the pages show of `[pages]`, prepared once per app."""

    product_name: str = "Bastion"
    logo_src: str = ""  # what an <img src> names: "" none, LOGO_PATH, or the https URL
    logo: bytes = field(default=b"", repr=False)
    logo_type: str = ""
    css: str = ""
    csp: str = BASE_CSP
    scope_words: dict[str, str] = field(default_factory=dict)

    def csp_with(self, directive: str) -> str:
        """The pages' CSP with one more directive (the `form_post` page's script hash)."""
        return self.csp.replace("frame-ancestors", f"{directive}; frame-ancestors")


def branding_of(pages: PageSettings) -> Branding:
    """The `Branding` of checked settings (a logo file is read here, once)."""
    logo, logo_type, logo_src, csp = b"", "", "", BASE_CSP
    if pages.logo_is_url:
        parts = urlsplit(pages.logo)
        origin = f"https://{parts.netloc}"
        logo_src, csp = pages.logo, f"default-src 'self'; img-src 'self' {origin}; frame-ancestors 'none'"
    elif pages.logo:
        path = Path(pages.logo)
        logo, logo_type, logo_src = path.read_bytes(), LOGO_TYPES[path.suffix.lower()], LOGO_PATH
    return Branding(pages.product_name, logo_src, logo, logo_type, _stylesheet(pages), csp, pages.scope_words)


def _stylesheet(pages: PageSettings) -> str:
    variables = [
        f"--{name}: {value};"
        for name, value in (
            ("accent", pages.accent_colour),
            ("page-background", pages.background_colour),
            ("page-text", pages.text_colour),
        )
        if value
    ]
    rules = [":root { " + " ".join(variables) + " }"] if variables else []
    if pages.background_colour:
        rules.append("body { background: var(--page-background); }")
    if pages.text_colour:
        rules.append("body { color: var(--page-text); }")
    return "/* [pages] colours */\n" + "\n".join(rules) + "\n"


DEFAULT_BRANDING = Branding()
_CURRENT: ContextVar[Branding] = ContextVar("bastion_branding", default=DEFAULT_BRANDING)


def current_branding() -> Branding:
    return _CURRENT.get()


class BrandingMiddleware:
    """Makes `branding` the current one while a request is served."""

    def __init__(self, app: ASGIApp, branding: Branding) -> None:
        self.app = app
        self.branding = branding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _CURRENT.set(self.branding)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(token)


async def stylesheet_endpoint(request: Request) -> Response:
    """`/branding.css`: the configured colours (an empty rule set when none are)."""
    return Response(
        current_branding().css,
        media_type="text/css",
        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"},
    )


async def logo_endpoint(request: Request) -> Response:
    """`/branding/logo`: the configured logo file, or 404 when the logo is a URL or none."""
    branding = current_branding()
    if not branding.logo:
        return Response("Not Found", 404, media_type="text/plain")
    return Response(
        branding.logo,
        media_type=branding.logo_type,
        headers={
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        },
    )


__all__ = [
    "BASE_CSP",
    "DEFAULT_BRANDING",
    "LOGO_PATH",
    "Branding",
    "BrandingMiddleware",
    "branding_of",
    "current_branding",
    "logo_endpoint",
    "stylesheet_endpoint",
]
