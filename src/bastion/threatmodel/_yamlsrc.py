"""YAML loading that keeps the line of every value, so errors can point at the file and line.

PyYAML's composer already records a start mark on every node; we build plain Python data from
the node graph ourselves and keep a map from each value's path to its 1-based line.
"""

from __future__ import annotations

from typing import Any

import yaml

from bastion.threatmodel._errors import Problem, ThreatModelError

Path = tuple[str | int, ...]

# libyaml's parser is an order of magnitude faster and keeps the same marks; fall back to the
# pure-Python one where PyYAML was built without it.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Located:
    """Plain data loaded from YAML plus the line of every path inside it."""

    def __init__(self, data: Any, lines: dict[Path, int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def line(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one (1 for the document)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def load_located(text: str, file: str) -> Located:
    """Parse YAML `text` safely, recording lines; raises ThreatModelError with the position."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        data = _build(loader, node, (), lines, file) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ThreatModelError(
            [Problem(file, line, f"YAML syntax error: {exc.problem or exc}", "correct the YAML syntax")]
        ) from exc
    finally:
        loader.dispose()
    return Located(data, lines, file)


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: dict[Path, int], file: str
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ThreatModelError(
                    [Problem(file, key_node.start_mark.line + 1, f"key {key!r} is not a string",
                             "quote the key")]
                )
            if key in result:
                raise ThreatModelError(
                    [Problem(file, key_node.start_mark.line + 1, f"duplicate key {key!r}",
                             "keep one of the two entries")]
                )
            result[key] = _build(loader, value_node, (*path, key), lines, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
