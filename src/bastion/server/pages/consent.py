"""Consent to an authorization request (`/consent`): the client and each scope in plain words
(the operator's `[pages.scopes]` first, then ours),
then Allow (the code is issued, the consent remembered with it) or Deny (access_denied goes
back to the client). The device consent page (`device`) shows the same form.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.responses import Response

from bastion.events import audit
from bastion.identity import sessions
from bastion.protocol.errors import AccessDenied
from bastion.server import flow
from bastion.server.pages import see_other
from bastion.server.pages.branding import current_branding
from bastion.server.pages.step import Needs, Page, back_to, enabled, with_page
from bastion.store.pending_requests import AUTHORIZATION

# The consent page names each scope in plain words.
SCOPE_WORDS = {
    "openid": "Confirm who you are (your account identifier)",
    "profile": "See your name and profile details",
    "email": "See your email address",
    "offline_access": "Stay signed in and act for you while you are away",
    "roles": "See the roles your account has",
    "read": "Read your data",
    "write": "Change your data",
}

CONSENT = Needs(stage=sessions.AUTHENTICATED, kinds=frozenset({AUTHORIZATION}), user=enabled)


def scope_words(scope: str) -> list[str]:
    """Each scope in words: as `[pages.scopes]` describes it, else ours, else by its name."""
    configured = current_branding().scope_words
    return [configured.get(s) or SCOPE_WORDS.get(s, f"Use the permission “{s}”") for s in scope.split()]


async def consent_form(page: Page, title: str, **extra: Any) -> Response:
    """The consent form for the page's pending request: its client, its scopes, who is signed in."""
    client_name = await page.client_name()
    return page.render_form(
        "consent.html",
        title=title,
        client_name=client_name,
        back=back_to(page, client_name),
        scopes=scope_words(page.pending.scope),
        username=page.user.username,
        **extra,
    )


@with_page(CONSENT)
async def consent_page(page: Page) -> Response:
    # The form only for a session that may then finish the request; else the step it needs.
    finish = await flow.check_finish(page.ctx, page.browser, page.pending)
    if isinstance(finish, Response):
        return finish
    return await consent_form(page, "Allow access?")


@with_page(replace(CONSENT, post=True, decision=True))
async def consent_submit(page: Page) -> Response:
    ctx, pending, user = page.ctx, page.pending, page.user
    client = await flow.client_of(ctx, pending)
    if client is None:
        return flow.unregistered()
    if not page.approved:
        audit("consent_denied", sub=user.sub, client_id=client.client_id)
        return await flow.end_with_error(ctx, pending, AccessDenied("the user denied the request"))
    finish = await flow.check_finish(ctx, page.browser, pending)
    if isinstance(finish, Response):
        return finish
    response = await flow.issue_code(ctx, finish, see_other("/"), consented=True)
    audit("consent_granted", sub=user.sub, client_id=client.client_id, scope=pending.scope)
    return response


__all__ = ["CONSENT", "SCOPE_WORDS", "consent_form", "consent_page", "consent_submit", "scope_words"]
