"""How an authorization response travels back to the client (`response_mode`).

OAuth 2.0 Multiple Response Type Encoding Practices §2.1
(https://openid.net/specs/oauth-v2-multiple-response-types-1_0.html) defines the parameter and
`query` and `fragment`; OAuth 2.0 Form Post Response Mode
(https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html) adds `form_post`, the
response parameters in an HTML form that the browser posts to the redirect URI, so they never
appear in a URL (history, logs, Referer).

Only `response_type=code` is served, whose default mode is `query` (Multiple Response Type
Encoding Practices §5). `fragment` is not offered: a code in a fragment is read by script only,
which no server-side client does, and the spec's reason for fragments (keeping tokens away from
the server) does not apply to a code. Any other value, or a repeated one, is invalid_request,
answered in the default mode because the requested one is unusable.
"""

from __future__ import annotations

from bastion.protocol.errors import InvalidRequest

QUERY = "query"
FORM_POST = "form_post"
FRAGMENT = "fragment"
# Discovery's `response_modes_supported` (OpenID Connect Discovery 1.0 §3).
RESPONSE_MODES_SUPPORTED = (QUERY, FORM_POST)


def parse_response_mode(raw: str | None) -> str:
    """The response mode of a `response_type=code` request (`query` when absent).

    Raises:
        InvalidRequest: `fragment`, or a mode this server does not support.
    """
    if raw is None:
        return QUERY
    if raw == FRAGMENT:
        raise InvalidRequest("response_mode fragment is not supported for response_type=code; use query or form_post")
    if raw not in RESPONSE_MODES_SUPPORTED:
        raise InvalidRequest("response_mode is not supported; use query or form_post")
    return raw


__all__ = ["FORM_POST", "FRAGMENT", "QUERY", "RESPONSE_MODES_SUPPORTED", "parse_response_mode"]
