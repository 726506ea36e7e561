"""The authorization response in the `form_post` response mode (OAuth 2.0 Form Post Response
Mode §2): a page whose form, `method="post"` with the client's redirect URI as its `action`,
carries the response parameters as hidden fields; one line of script submits it at once.

This is the pages' one script. It is inline, allowed by its SHA-256 in the page's own
Content-Security-Policy (`script-src 'sha256-...'`), so every other script stays refused, here
and on every other page. A browser without script shows the Continue button, which posts the same
form. The page is never cached (§5: it carries a code) and sends no Referer. `form-action` is
left out, as on every page: browsers apply it to the redirect the client's callback answers with.
"""

from __future__ import annotations

import base64
import hashlib

from starlette.responses import HTMLResponse, Response

from bastion.server.pages import render
from bastion.server.pages.branding import current_branding

# Nothing in it for autoescape to change (no quote, `<`, `>` or `&`): the page carries exactly
# these bytes, whose hash the policy names.
SCRIPT = "document.forms[0].submit();"
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = f"default-src 'self'; script-src '{SCRIPT_HASH}'; frame-ancestors 'none'"


def form_post(redirect_uri: str, params: dict[str, str | None], carried: Response | None = None) -> HTMLResponse:
    """The page that posts `params` (those not None) to `redirect_uri`; with the cookies that
    `carried` (the answer it replaces, say a session just started) set."""
    fields = [(name, value) for name, value in params.items() if value is not None]
    page = render("form_post.html", title="Continue", redirect_uri=redirect_uri, params=fields, script=SCRIPT)
    page.headers["content-security-policy"] = current_branding().csp_with(f"script-src '{SCRIPT_HASH}'")
    if carried is not None:
        for cookie in carried.headers.getlist("set-cookie"):
            page.headers.append("set-cookie", cookie)
    return page


__all__ = ["CSP", "SCRIPT", "SCRIPT_HASH", "form_post"]
