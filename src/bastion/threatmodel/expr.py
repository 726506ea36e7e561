"""A small, safe expression language for rule conditions.

Conditions look like Python (`not element.encrypted and element.crosses_boundary`) because rule
authors know it, but they are never given to `eval`: the text is parsed with `ast` and only an
allow-list of node types is accepted (boolean logic, comparisons, `in`, attribute reads of the
names the engine binds, literals and `len`). pytm evaluates its conditions with `eval()` and
added an AST validator only in 1.4; here the interpreter itself is the allow-list.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.threatmodel._errors import ExpressionError

MAX_LENGTH = 2000
MAX_DEPTH = 40  # nesting bound: keeps parsing and evaluation far from Python's recursion limit

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "any_of": lambda items, wanted: any(item in wanted for item in items),
}


@dataclass(frozen=True)
class Condition:
    """A parsed, checked condition; `evaluate` runs it against a mapping of bound names."""

    source: str
    tree: ast.Expression

    def evaluate(self, names: Mapping[str, Any]) -> bool:
        """Evaluate against `names`; raises ExpressionError for unknown names or attributes."""
        return bool(_eval(self.tree.body, names, self.source))


def compile_condition(source: str) -> Condition:
    """Parse `source` and check that it uses only the allowed constructs."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"condition is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg}") from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        raise ExpressionError(f"not a valid expression: {exc}") from exc
    _check_depth(tree)
    for node in ast.walk(tree):
        _check(node)
    return Condition(source, tree)


def _check_depth(tree: ast.AST) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"condition is nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


_ALLOWED: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Name,
    ast.Load, ast.Attribute, ast.Constant, ast.List, ast.Tuple, ast.Call, *_COMPARE,
)


def _check(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED):
        raise ExpressionError(f"`{type(node).__name__}` is not allowed in a condition")
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ExpressionError(f"attribute `{node.attr}` is not allowed")
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise ExpressionError(f"name `{node.id}` is not allowed")
    if isinstance(node, ast.Call) and (
        not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords
    ):
        raise ExpressionError("only len(x) and any_of(items, wanted) may be called")
    if isinstance(node, ast.Constant) and not isinstance(node.value, str | int | bool | None):
        raise ExpressionError(f"constant {node.value!r} is not allowed")


def _eval(node: ast.AST, names: Mapping[str, Any], source: str) -> Any:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = _eval(value, names, source)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = _eval(value, names, source)
            if result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        return not _eval(node.operand, names, source)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names, source)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, names, source)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise ExpressionError(f"cannot compare {left!r} and {right!r}") from exc
            left = right
        return True
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ExpressionError(f"unknown name `{node.id}` (known: {', '.join(sorted(names))})")
        return names[node.id]
    if isinstance(node, ast.Attribute):
        owner = _eval(node.value, names, source)
        if not isinstance(owner, Mapping) or node.attr not in owner:
            raise ExpressionError(f"`{ast.unparse(node.value)}` has no attribute `{node.attr}`")
        return owner[node.attr]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(_eval(e, names, source) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_eval(a, names, source) for a in node.args]
        try:
            return _FUNCTIONS[node.func.id](*args)
        except TypeError as exc:
            raise ExpressionError(f"{node.func.id}(...) failed: {exc}") from exc
    raise ExpressionError(f"`{type(node).__name__}` is not allowed in a condition")
