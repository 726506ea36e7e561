"""RFC 6749 §3.2 form bodies: form-encoding only, no repeated parameters (sans-I/O)."""

from __future__ import annotations

import contextlib
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.protocol.errors import InvalidRequest
from bastion.protocol.rfc6749.params import check_content_type, parse_form, parse_query, require, single

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "content_type",
    [FORM, FORM + "; charset=UTF-8", "Application/X-WWW-Form-URLEncoded", f" {FORM} ;charset=utf-8"],
)
def test_form_content_types_accepted(content_type):
    """The form media type is matched case-insensitively, parameters ignored."""
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("application/json", id="json"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param("text/plain", id="text"),
        pytest.param(FORM + "x", id="lookalike"),
        pytest.param("application/x-www-form-urlencoded-json", id="longer-lookalike"),
    ],
)
def test_other_content_types_refused(content_type):
    """Anything but a form body is invalid_request."""
    with pytest.raises(InvalidRequest) as caught:
        check_content_type(content_type)

    assert caught.value.description == f"the request body must be {FORM}"


def test_parse_form_decodes_pairs():
    """Percent-encoding and + are decoded; blank values are kept (and read as absent by single())."""
    params = parse_form(b"grant_type=client_credentials&scope=read+write&resource=https%3A%2F%2Fa.test%2F&x=")

    assert params == {
        "grant_type": ["client_credentials"],
        "scope": ["read write"],
        "resource": ["https://a.test/"],
        "x": [""],
    }
    assert single(params, "x") is None


def test_empty_body_is_no_parameters():
    """An empty body parses to nothing (the endpoint then names what is required)."""
    assert parse_form(b"") == {}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        pytest.param(b"a=1&a=1", "a", id="same-value"),
        pytest.param(b"a=1&a=2", "a", id="different-values"),
        pytest.param(b"a=&a=1", "a", id="blank-then-value"),
        pytest.param(b"b=1&a=1&b=2", "b", id="not-adjacent"),
    ],
)
def test_repeated_parameter_refused(body, name):
    """RFC 6749 §3.1: parameters MUST NOT be included more than once."""
    with pytest.raises(InvalidRequest) as caught:
        parse_form(body)

    assert caught.value.description == f"parameter {name} is repeated"


def test_repeatable_parameters_collect_values():
    """Only the parameters the caller names may repeat (RFC 8707 resource)."""
    params = parse_form(b"resource=a&resource=b", repeatable={"resource"})

    assert params == {"resource": ["a", "b"]}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xff=1", id="invalid-utf8"),
        pytest.param(b"novalue", id="field-without-equals"),
        pytest.param(b"a=1&&b=2", id="empty-field"),
    ],
)
def test_malformed_form_refused(body):
    """Bodies that are not form encoding are invalid_request."""
    with pytest.raises(InvalidRequest) as caught:
        parse_form(body)

    assert caught.value.description == "the request body is not valid form encoding"


def test_require_names_the_missing_parameter():
    """A REQUIRED parameter that is absent or blank is invalid_request naming it."""
    with pytest.raises(InvalidRequest) as caught:
        require({"token": [""]}, "token")

    assert caught.value.description == "parameter token is required"
    assert require({"token": ["t"]}, "token") == "t"


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        pytest.param(b"a=%00", "parameters must not contain control characters", id="percent-nul"),
        pytest.param(b"a=x\x00y", "parameters must not contain control characters", id="raw-nul"),
        pytest.param(b"%00=1", "parameters must not contain control characters", id="nul-in-name"),
        pytest.param(b"a=%0d%0a", "parameters must not contain control characters", id="crlf"),
        pytest.param(b"a=%7f", "parameters must not contain control characters", id="del"),
        pytest.param(b"a=%c2%85", "parameters must not contain control characters", id="c1-nel"),
        pytest.param(b"a=%ff", "invalid", id="percent-invalid-utf8"),
        pytest.param(b"a=%ed%a0%80", "invalid", id="percent-lone-surrogate"),
        pytest.param(b"a=%c3", "invalid", id="percent-truncated"),
        pytest.param(b"a=\xed\xa0\x80", "invalid", id="raw-lone-surrogate"),
    ],
)
def test_control_characters_and_invalid_utf8_refused(raw, description):
    """NUL and other controls, and bytes that are not UTF-8 (raw or percent-encoded), are invalid_request in
    a body and in a query string alike: never replaced, never passed on."""
    expected = {
        "form": "the request body is not valid form encoding",
        "query": "the query string is not valid URL encoding",
    }
    for where, parse in (("form", parse_form), ("query", parse_query)):
        with pytest.raises(InvalidRequest) as caught:
            parse(raw)
        assert caught.value.description == (expected[where] if description == "invalid" else description)


def test_query_keeps_repeats_and_bare_names():
    """A query string keeps repeated names (the endpoint judges them) and reads a bare name as empty."""
    assert parse_query(b"a=1&a=2&b&&c=%E2%80%AE") == {"a": ["1", "2"], "b": [""], "c": ["\u202e"]}


printable = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
names = st.text(alphabet=printable, min_size=1, max_size=12)
values = st.text(alphabet=printable, max_size=20)


@given(st.dictionaries(names, values, max_size=6))
def test_any_urlencoded_dict_round_trips(data):
    """Whatever a client form-encodes with distinct names and no control characters comes back unchanged."""
    assert parse_form(urlencode(data).encode()) == {k: [v] for k, v in data.items()}
    assert parse_query(urlencode(data).encode()) == {k: [v] for k, v in data.items()}


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash(body):
    """Any body or query either parses or is invalid_request: no other exception escapes."""
    with contextlib.suppress(InvalidRequest):
        parse_form(body)
    with contextlib.suppress(InvalidRequest):
        parse_query(body)
