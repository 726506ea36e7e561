"""RFC 6749 §3.3 scope syntax and selection (sans-I/O)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.protocol.errors import InvalidRequest, InvalidScope
from bastion.protocol.rfc6749.scope import check_scope_syntax, narrowed_scope, parse_scope, resolve_scope

SYNTAX = "scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)"


@pytest.mark.parametrize(
    ("scope", "tokens"),
    [
        pytest.param("read", ("read",), id="one"),
        pytest.param("read write", ("read", "write"), id="two"),
        pytest.param("write read write", ("write", "read"), id="duplicates-dropped-order-kept"),
        pytest.param(
            "api:orders.read https://x.test/s !#$", ("api:orders.read", "https://x.test/s", "!#$"), id="punctuation"
        ),
        pytest.param(None, (), id="absent"),
    ],
)
def test_parse_scope(scope, tokens):
    """Valid scope strings split into their tokens."""
    assert parse_scope(scope) == tokens


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("", id="empty"),
        pytest.param(" read", id="leading-space"),
        pytest.param("read ", id="trailing-space"),
        pytest.param("read  write", id="double-space"),
        pytest.param("read\twrite", id="tab"),
        pytest.param('re"ad', id="double-quote"),
        pytest.param("re\\ad", id="backslash"),
        pytest.param("réad", id="non-ascii"),
        pytest.param("read\x7f", id="del"),
    ],
)
def test_scope_syntax_refused(scope):
    """Characters outside %x21 / %x23-5B / %x5D-7E, or bad separators, are invalid_request."""
    with pytest.raises(InvalidRequest) as caught:
        check_scope_syntax(scope)

    assert caught.value.description == SYNTAX


def test_resolve_scope_defaults_to_everything_allowed():
    """No scope requested means the client's whole allowed set."""
    assert resolve_scope((), ("read", "write")) == ("read", "write")


def test_resolve_scope_refuses_anything_not_allowed():
    """Every requested token must be allowed; the refused ones are named."""
    with pytest.raises(InvalidScope) as caught:
        resolve_scope(("read", "admin", "root"), ("read", "write"))

    assert caught.value.description == "scope not allowed for this client: admin root"


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        pytest.param((), ("openid", "read"), id="none-keeps-original"),
        pytest.param(("read",), ("read",), id="narrower"),
        pytest.param(("read", "openid"), ("read", "openid"), id="same-reordered"),
    ],
)
def test_narrowed_scope_may_narrow(requested, expected):
    """RFC 6749 §6: a refresh may ask for less than, or all of, the original scope."""
    assert narrowed_scope(requested, ("openid", "read")) == expected


def test_narrowed_scope_never_widens():
    """RFC 6749 §6: a scope not originally granted is refused and named."""
    with pytest.raises(InvalidScope) as caught:
        narrowed_scope(("read", "write", "admin"), ("read",))

    assert caught.value.description == "scope exceeds the original grant: write admin"


token = st.text(alphabet=st.sampled_from([chr(c) for c in range(0x21, 0x7F) if c not in (0x22, 0x5C)]), min_size=1)


@given(st.lists(token, min_size=1, max_size=6))
def test_any_valid_token_list_parses(tokens):
    """Any list of valid scope-tokens joined by single spaces parses to its distinct tokens."""
    assert parse_scope(" ".join(tokens)) == tuple(dict.fromkeys(tokens))


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_is_invalid_request(text):
    """Any string is either a scope or invalid_request; nothing else escapes."""
    with contextlib.suppress(InvalidRequest):
        parse_scope(text)
