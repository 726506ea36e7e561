"""Server-rendered pages: Jinja2 with autoescape, our own stylesheet, no script (one exception:
the `form_post` response page's one line, allowed by its hash, see `form_post`).

One module per page family (`login`, `mfa`, `consent`, `device`, `logout`), each handler opened
by the shared step (`step`) and finishing through the flow engine (`bastion.server.flow`); the
routes are `routes.PAGE_ROUTES`. This module renders.

Every page is sent with a Content-Security-Policy of `default-src 'self'; frame-ancestors 'none'`
(no inline script or style; no framing, against clickjacking of the consent page), `no-store`,
`nosniff` and `Referrer-Policy: no-referrer`; a configured logo URL adds its origin, and only
it, to `img-src` (`branding`). `form-action` is left out on purpose: browsers
apply it to the redirect after a form post, which would block the redirect to the client.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse

from bastion.ratelimit import Decision, retry_after_seconds
from bastion.server.pages.branding import current_branding

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
    """The page `template` with the current branding (`brand` in the template) and its CSP."""
    brand = current_branding()
    body = _environment.get_template(template).render(brand=brand, **context)
    return HTMLResponse(body, status, headers={**PAGE_HEADERS, "content-security-policy": brand.csp})


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    return render("error.html", status, title=title, message=message)


def see_other(url: str) -> RedirectResponse:
    """RFC 9700 §4.12: 303, so a form post is never replayed to the next location."""
    return RedirectResponse(url, status_code=303, headers=dict(PAGE_HEADERS))


def throttled_message(refused: str, retry_after: float) -> str:
    """`refused`, then how long to wait: whole seconds under a minute, whole minutes above, both
    rounded up (a page that said "1 minute" for a 5-second wait sent people away for nothing)."""
    if retry_after < 60:
        count, unit = max(1, math.ceil(retry_after)), "second"
    else:
        count, unit = math.ceil(retry_after / 60), "minute"
    return f"{refused} Try again in {count} {unit}{'s' if count > 1 else ''}."


def too_many_requests_page(refusal: Decision) -> HTMLResponse:
    """429 for a browser whose address started more sign-ins than the limit allows: a page that
    says how long to wait, and `Retry-After` (RFC 6585 §4) in whole seconds."""
    message = throttled_message("Too many sign-in requests came from your network.", refusal.retry_after)
    page = error_page("Too many requests", message, 429)
    page.headers["retry-after"] = str(retry_after_seconds(refusal))
    return page


__all__ = [
    "CSP",
    "PAGE_HEADERS",
    "STATIC_DIR",
    "error_page",
    "render",
    "see_other",
    "throttled_message",
    "too_many_requests_page",
]
