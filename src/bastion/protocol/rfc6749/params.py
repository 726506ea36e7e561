"""Form bodies of OAuth endpoints (RFC 6749 §3.2, Appendix B).

RFC 6749 §3.1/§3.2: "Request and response parameters MUST NOT be included more than once."
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import unquote

from bastion.protocol.errors import InvalidRequest

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


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
        InvalidRequest: the body is not valid UTF-8 form encoding, or a parameter repeats.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the request body is not valid form encoding", detail=str(exc)) from exc
    params: dict[str, list[str]] = {}
    if not text:
        return params
    pairs = []
    for field in text.split("&"):
        name, equals, value = field.partition("=")
        if not equals:
            detail = f"bad query field: {field!r}"
            raise InvalidRequest("the request body is not valid form encoding", detail=detail)
        if "+" in name or "%" in name:
            name = unquote(name.replace("+", " "), errors="replace")
        if "+" in value or "%" in value:
            value = unquote(value.replace("+", " "), errors="replace")
        pairs.append((name, value))
    # Repeats are judged once the whole body has parsed, as before: a malformed field anywhere wins.
    for name, value in pairs:
        values = params.setdefault(name, [])
        if values and name not in repeatable:
            raise InvalidRequest(f"parameter {name} is repeated")
        values.append(value)
    return params


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
