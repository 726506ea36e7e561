"""Server-rendered pages: Jinja2 with autoescape, our own stylesheet, no script at all.

Every page is sent with a Content-Security-Policy of `default-src 'self'; frame-ancestors 'none'`
(no inline script or style; no framing, against clickjacking of the consent page), `no-store`,
`nosniff` and `Referrer-Policy: no-referrer`. `form-action` is left out on purpose: browsers
apply it to the redirect after a form post, which would block the redirect to the client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

STATIC_DIR = Path(__file__).with_name("static")
CSP = "default-src 'self'; frame-ancestors 'none'"
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

_environment = Environment(
    loader=PackageLoader("bastion.server.pages", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the package: no stat() of the file per page
)


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = _environment.get_template(template).render(**context)
    return HTMLResponse(body, status, headers=dict(PAGE_HEADERS))


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    return render("error.html", status, title=title, message=message)


__all__ = ["CSP", "PAGE_HEADERS", "STATIC_DIR", "error_page", "render"]
