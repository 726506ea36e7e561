"""The safe expression language of rule conditions: what it evaluates and what it refuses."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.threatmodel import ExpressionError, compile_condition

NAMES: dict[str, Any] = {
    "element": {"encrypted": False, "authentication": "none", "object_ids": ("id",),
                "sensitivity": 2, "rate_limit": None, "inbound_auth": ("bearer_token",)},
    "sink": {"type": "data_store"},
    "CONFIDENTIAL": 2,
}


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param("not element.encrypted", True, id="not"),
    pytest.param('element.authentication == "none" and sink.type == "data_store"', True, id="and"),
    pytest.param("element.encrypted or element.sensitivity >= CONFIDENTIAL", True, id="or-compare"),
    pytest.param("len(element.object_ids) > 0", True, id="len"),
    pytest.param('"bearer_token" in element.inbound_auth', True, id="in"),
    pytest.param('"mtls" not in element.inbound_auth', True, id="not-in"),
    pytest.param("element.rate_limit is None", True, id="is-none"),
    pytest.param('any_of(element.inbound_auth, ["mtls", "api_key"])', False, id="any-of"),
    pytest.param("1 < element.sensitivity < 3", True, id="chained"),
    pytest.param("True", True, id="constant"),
])
def test_conditions_evaluate(source: str, expected: bool) -> None:
    """Boolean logic, comparisons, membership, len and any_of evaluate like Python."""
    assert compile_condition(source).evaluate(NAMES) is expected


def test_and_short_circuits_before_a_missing_attribute() -> None:
    """`and` stops at the first false operand, so guards like `sink.type == ...` protect reads."""
    condition = compile_condition('sink.type == "process" and sink.authorizes_requests')
    assert condition.evaluate(NAMES) is False


@pytest.mark.parametrize("source", [
    pytest.param("__import__('os').system('true')", id="import-call"),
    pytest.param("element.__class__", id="dunder-attribute"),
    pytest.param("(lambda: 1)()", id="lambda"),
    pytest.param("[x for x in element.object_ids]", id="comprehension"),
    pytest.param("element['encrypted']", id="subscript"),
    pytest.param("open('/etc/passwd')", id="builtin-call"),
    pytest.param("element.sensitivity + 1 > 2", id="arithmetic"),
    pytest.param("len(x=1)", id="keyword-call"),
    pytest.param("x := 1", id="walrus"),
    pytest.param("element.", id="syntax-error"),
])
def test_disallowed_syntax_is_refused_at_load(source: str) -> None:
    """Anything outside the allow-list is rejected when the rule is loaded, never evaluated."""
    with pytest.raises(ExpressionError):
        compile_condition(source)


@pytest.mark.parametrize(("source", "message"), [
    pytest.param("element.encrpyted", "`element` has no attribute `encrpyted`", id="attribute"),
    pytest.param("target.encrypted", "unknown name `target` (known: CONFIDENTIAL, element, sink)",
                 id="name"),
    pytest.param("element.sensitivity > 'high'", "cannot compare 2 and 'high'", id="type"),
])
def test_unknown_names_fail_loudly(source: str, message: str) -> None:
    """A typo in a rule is an error on evaluation, not a silent False."""
    with pytest.raises(ExpressionError) as info:
        compile_condition(source).evaluate(NAMES)
    assert str(info.value) == message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_either_compiles_or_is_refused(source: str) -> None:
    """Arbitrary text never escapes as anything but ExpressionError, compiled or evaluated."""
    try:
        condition = compile_condition(source)
    except ExpressionError:
        return
    with contextlib.suppress(ExpressionError):
        assert condition.evaluate(NAMES) in (True, False)


@pytest.mark.parametrize("source", [
    pytest.param("not " * 200 + "True", id="deep-not"),
    pytest.param("[" * 150 + "True" + "]" * 150, id="deep-lists"),
    pytest.param("a\x00b", id="nul-byte"),
    pytest.param("x" * 2001, id="too-long"),
])
def test_pathological_conditions_are_refused(source: str) -> None:
    """Deep nesting, NUL bytes and huge conditions are refused before evaluation."""
    with pytest.raises(ExpressionError):
        compile_condition(source)
