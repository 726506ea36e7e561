"""The first step of every page: one place that reads the form, loads the browser session and
the pending request, loads the user, checks CSRF, or answers expired / forbidden / invalid.

A page declares what it needs (`Needs`) and its handler, wrapped by `with_page(needs)`, receives a
ready `Page` and holds only its own decision; a new page cannot forget a check it declared.

The pending request is loaded only of the kinds the page declares (`store.pending_requests`:
authorization or device); a request of another kind is answered exactly as an unknown or
expired one, so the id of a device request posted to `/consent` issues nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bastion.identity import sessions, users
from bastion.identity.users import User
from bastion.protocol.rfc6749.params import check_content_type, parse_form, single
from bastion.server.browser import BrowserSession, load_session, load_session_and_request, provisional_from_cookie
from bastion.server.context import ServerContext
from bastion.server.pages import error_page, render
from bastion.server.responses import read_body
from bastion.store.pending_requests import AUTHORIZATION, DEVICE, AuthorizationRequestRow

T = TypeVar("T")
EITHER = frozenset({AUTHORIZATION, DEVICE})
APPROVE, DENY = "approve", "deny"

session_expired = partial(
    error_page, "Session expired", "Your session has expired. Return to the application and start again."
)
form_expired = partial(
    error_page, "Form expired", "The form was not valid (missing or wrong CSRF token). Go back and retry.", 403
)
no_decision = partial(error_page, "Invalid request", "Choose Allow or Deny.")


def enabled(user: User) -> bool:
    return user.enabled


@dataclass(frozen=True, slots=True)
class Needs:
    """What a page needs before its own decision.

    post: a POSTed form (its CSRF token checked) rather than the query string.
    stage: the browser session's stage (`identity.sessions`), or None for any live session.
    kinds: the kinds of pending request the page serves (named by `request`); empty for none.
    user: load the session's user, and accept it only when this says so.
    anonymous: a page without pending request that a provisional session (a cookie with nothing
        stored, `browser.anonymous_session`) may use.
    decision: the form carries the consent decision, `approve` or `deny`.
    expired, forbidden: the answers when something is missing, or the CSRF token is wrong.
    """

    post: bool = False
    stage: str | None = None
    kinds: frozenset[str] = frozenset()
    user: Callable[[User], bool] | None = None
    decision: bool = False
    anonymous: bool = False
    expired: Callable[[], Response] = session_expired
    forbidden: Callable[[], Response] = form_expired


@dataclass(frozen=True, slots=True)
class Page:
    """A page request that met its `Needs`: what the handler decides from."""

    request: Request
    ctx: ServerContext
    browser: BrowserSession
    form: dict[str, list[str]]  # empty for a GET
    loaded: AuthorizationRequestRow | None
    signed_in: User | None

    @property
    def pending(self) -> AuthorizationRequestRow:
        """The pending request (for a page that declared `kinds`)."""
        return _declared(self.loaded, "pending request")

    @property
    def user(self) -> User:
        """The session's user (for a page that declared `user`)."""
        return _declared(self.signed_in, "user")

    @property
    def source(self) -> str:
        return source_of(self.request)

    @property
    def approved(self) -> bool:
        return self.field("decision") == APPROVE

    def field(self, name: str) -> str | None:
        """The form's one value of `name` (None when absent or empty)."""
        return single(self.form, name)

    def render_form(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A form of this page's flow: it posts back the session's CSRF token and the pending
        request's id."""
        return render(template, status, csrf_token=self.browser.csrf_token, request_id=self.pending.id, **context)

    async def client_name(self) -> str:
        """The pending request's client, by name (its id when it is gone)."""
        client = await self.ctx.clients.get(self.pending.client_id)
        return client.name if client is not None else self.pending.client_id


def back_to(page: Page, client_name: str) -> str:
    """The client a "Back to" button names on a page of `page`'s flow ("" for a device request:
    its application runs on another device)."""
    return client_name if page.pending.kind == AUTHORIZATION else ""


def _declared(value: T | None, what: str) -> T:
    if value is None:  # pragma: no cover - a handler reading what its page did not declare
        raise LookupError(f"this page declared no {what}")
    return value


def source_of(request: Request) -> str:
    """The source address, for the throttles."""
    return request.client.host if request.client else "unknown"


async def read_form(request: Request) -> dict[str, list[str]]:
    """A page's form body (RFC 6749 §3.2 rules: content type, size, no repeated field); an
    invalid one raises InvalidRequest, which the app answers as JSON."""
    check_content_type(request.headers.get("content-type"))
    return parse_form(await read_body(request))


async def open_page(request: Request, needs: Needs) -> Page | Response:
    """The `Page` the request makes, or the answer that refuses it. In order: the form, the
    session and pending request (else expired), the user (else expired), the CSRF token (else
    forbidden), the decision (else invalid)."""
    ctx: ServerContext = request.app.state.ctx
    form = await read_form(request) if needs.post else {}
    browser, pending = await _session_and_request(ctx, request, needs, form)
    if browser is None or not _serves(needs, browser, pending):
        return needs.expired()
    user = None
    if needs.user is not None:
        user = await _accepted_user(ctx, browser, needs.user)
        if user is None:
            return needs.expired()
    if needs.post and not sessions.csrf_matches(browser.csrf_token, single(form, "csrf_token")):
        return needs.forbidden()
    if needs.decision and single(form, "decision") not in (APPROVE, DENY):
        return no_decision()
    return Page(request, ctx, browser, form, pending, user)


async def _session_and_request(
    ctx: ServerContext, request: Request, needs: Needs, form: dict[str, list[str]]
) -> tuple[BrowserSession | None, AuthorizationRequestRow | None]:
    """The live session and, for a page that serves pending requests, the one the page names
    (in the form it posts, else in the query), read in one statement."""
    if not needs.kinds:
        browser = await load_session(ctx, request)
        if browser is None and needs.anonymous:
            browser = provisional_from_cookie(ctx, request)
        return browser, None
    request_id = single(form, "request") if needs.post else request.query_params.get("request")
    return await load_session_and_request(ctx, request, request_id)


def _serves(needs: Needs, browser: BrowserSession, pending: AuthorizationRequestRow | None) -> bool:
    """The session is at the stage the page needs, and the request (if it needs one) of a kind
    it serves: another kind is treated as no request at all."""
    if needs.stage is not None and (browser.stage != needs.stage or browser.sub is None):
        return False
    return not needs.kinds or (pending is not None and pending.kind in needs.kinds)


async def _accepted_user(ctx: ServerContext, browser: BrowserSession, accept: Callable[[User], bool]) -> User | None:
    user = await users.get_user(ctx.database, browser.sub) if browser.sub is not None else None
    return user if user is not None and accept(user) else None


Handler = Callable[[Page], Awaitable[Response]]


def with_page(needs: Needs) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """The endpoint that opens the page with `needs` and, when it opens, runs the handler."""

    def endpoint_of(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            opened = await open_page(request, needs)
            return opened if isinstance(opened, Response) else await handler(opened)

        return endpoint

    return endpoint_of


__all__ = [
    "EITHER",
    "Needs",
    "Page",
    "back_to",
    "enabled",
    "form_expired",
    "no_decision",
    "open_page",
    "read_form",
    "session_expired",
    "source_of",
    "with_page",
]
