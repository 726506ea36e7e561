"""Form bodies of OAuth endpoints (RFC 6749 §3.2, Appendix B).

RFC 6749 §3.1/§3.2: "Request and response parameters MUST NOT be included more than once."
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import unquote

from bastion.protocol.errors import InvalidRequest

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# RFC 6749 Appendix A: every parameter is printable (VSCHAR, NQSCHAR, or Unicode without
# controls for the few free-text ones). C0 controls, DEL and C1 controls are never meaningful in
# a parameter; NUL in particular is refused by PostgreSQL's text type, so a value holding one
# must stop here, as invalid_request, before anything looks it up.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS = "parameters must not contain control characters"


def check_content_type(content_type: str | None) -> None:
    """Only `application/x-www-form-urlencoded` bodies are accepted (RFC 6749 §3.2, §4.4.2)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_CONTENT_TYPE}")


def parse_form(body: bytes, *, repeatable: Collection[str] = ()) -> dict[str, list[str]]:
    """Parse a form body into name -> values, refusing repeats outside `repeatable`.

    The fields are what `parse_qsl(text, keep_blank_values=True, strict_parsing=True)` returns
    (and the same ValueError text is the detail of a malformed field); only fields that hold a
    `+` or a `%` go through unquoting.

    Raises:
        InvalidRequest: the body is not valid UTF-8 form encoding (percent-encodings included),
            a name or value holds a control character, or a parameter repeats.
    """
    params: dict[str, list[str]] = {}
    # Repeats are judged once the whole body has parsed, as before: a malformed field anywhere wins.
    for name, value in _pairs(body, "the request body is not valid form encoding", strict=True):
        values = params.setdefault(name, [])
        if values and name not in repeatable:
            raise InvalidRequest(f"parameter {name} is repeated")
        values.append(value)
    return params


def parse_query(query: bytes) -> dict[str, list[str]]:
    """Parse a query string into name -> values (repeats kept: the endpoint judges them).

    Fields without `=` are names with an empty value, as browsers and `parse_qs` read them.

    Raises:
        InvalidRequest: a percent-encoding that is not UTF-8, or a control character.
    """
    params: dict[str, list[str]] = {}
    for name, value in _pairs(query, "the query string is not valid URL encoding", strict=False):
        params.setdefault(name, []).append(value)
    return params


def _pairs(raw: bytes, invalid: str, *, strict: bool) -> list[tuple[str, str]]:
    """The (name, value) fields of `raw`, decoded as UTF-8 text free of control characters.

    With `strict`, a field without `=` is malformed (what `parse_qsl(strict_parsing=True)` says);
    the ValueError-style text is the private detail.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(invalid, detail=str(exc)) from exc
    pairs: list[tuple[str, str]] = []
    if not text:
        return pairs
    if _CONTROL.search(text) is not None:
        raise InvalidRequest(CONTROL_CHARACTERS)
    for field in text.split("&"):
        name, equals, value = field.partition("=")
        if not equals and (strict or not field):
            if strict:
                raise InvalidRequest(invalid, detail=f"bad query field: {field!r}")
            continue
        pairs.append((_decoded(name, invalid), _decoded(value, invalid)))
    # A control character spelled as `%00` is refused as the raw one is, once every field has
    # parsed (a malformed field anywhere is reported first, as parse_qsl would).
    if "%" in text and any(_CONTROL.search(name) or _CONTROL.search(value) for name, value in pairs):
        raise InvalidRequest(CONTROL_CHARACTERS)
    return pairs


def _decoded(text: str, invalid: str) -> str:
    """Unquote `+` and `%XX` strictly: bytes that are not UTF-8 are refused, never replaced."""
    if "+" not in text and "%" not in text:
        return text
    try:
        return unquote(text.replace("+", " "), errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(invalid, detail=str(exc)) from exc


def single(params: dict[str, list[str]], name: str) -> str | None:
    """The one value of `name`, or None when absent; an empty value counts as absent (§3.1)."""
    values = params.get(name)
    if not values or values[0] == "":
        return None
    return values[0]


def require(params: dict[str, list[str]], name: str) -> str:
    """The one value of a REQUIRED parameter."""
    value = single(params, name)
    if value is None:
        raise InvalidRequest(f"parameter {name} is required")
    return value
