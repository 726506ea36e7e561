"""YAML loading that keeps the line of every value, so errors can point at the file and line.

PyYAML's composer already records a start mark on every node; we build plain Python data from
the node graph ourselves and keep a map from each value's path to its 1-based line.

A model may come from an untrusted pull request, so loading it is bounded: YAML aliases are
refused (an alias is the same node reached twice; nine nested levels of eight aliases each make
a 300-byte "billion laughs" that expands to hundreds of megabytes, and a self-referencing one
never ends), nesting stops at `MAX_DEPTH`, and every failure is a ThreatModelError (exit 2).
"""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from bastion.threatmodel._errors import Problem, ThreatModelError

Path = tuple[str | int, ...]

# libyaml's parser is an order of magnitude faster and keeps the same marks; fall back to the
# pure-Python one where PyYAML was built without it.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Far deeper than any model or rule file needs (they nest five or six levels).
MAX_DEPTH = 50


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


def read_source(path: str | pathlib.Path, what: str) -> str:
    """The UTF-8 text of a model or rule file; unreadable or undecodable is a ThreatModelError."""
    try:
        return pathlib.Path(path).read_text("utf-8")
    except OSError as exc:
        raise ThreatModelError([Problem(str(path), 1, f"cannot read the {what}: {exc.strerror}",
                                        "check the path")]) from exc
    except UnicodeDecodeError as exc:
        raise ThreatModelError([Problem(str(path), 1, f"the {what} is not UTF-8 text ({exc.reason})",
                                        "save it as UTF-8")]) from exc


def load_located(text: str, file: str) -> Located:
    """Parse YAML `text` safely, recording lines; raises ThreatModelError with the position."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        data = _Builder(loader, lines, file).build(node, ()) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ThreatModelError(
            [Problem(file, line, f"YAML syntax error: {exc.problem or exc}", "correct the YAML syntax")]
        ) from exc
    except yaml.YAMLError as exc:  # e.g. a character YAML does not allow (no mark on some)
        raise ThreatModelError([Problem(file, 1, f"YAML error: {exc}", "correct the YAML")]) from exc
    except RecursionError as exc:  # the composer's own recursion, on nesting far past MAX_DEPTH
        raise ThreatModelError([Problem(file, 1, f"YAML nested more than {MAX_DEPTH} levels deep",
                                        "flatten the document")]) from exc
    finally:
        loader.dispose()
    return Located(data, lines, file)


class _Builder:
    """Plain data from a node graph, each node built once: a node met again is an alias."""

    def __init__(self, loader: yaml.SafeLoader, lines: dict[Path, int], file: str) -> None:
        self.loader = loader
        self.lines = lines
        self.file = file
        self.seen: set[int] = set()

    def _refuse(self, line: int, problem: str, fix: str) -> ThreatModelError:
        return ThreatModelError([Problem(self.file, line, problem, fix)])

    def build(self, node: yaml.Node, path: Path, line: int = 1) -> Any:
        if id(node) in self.seen:
            raise self._refuse(line, "YAML aliases (*name) are not supported",
                               "write the value out instead of referring to an anchor")
        self.seen.add(id(node))
        if len(path) > MAX_DEPTH:
            raise self._refuse(node.start_mark.line + 1, f"YAML nested more than {MAX_DEPTH} levels deep",
                               "flatten the document")
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), self.lines[path]) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or id(key_node) in self.seen:
                raise self._refuse(line, "a key is not a plain string", "quote the key")
            self.seen.add(id(key_node))
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise self._refuse(line, f"key {key!r} is not a string", "quote the key")
            if key in result:
                raise self._refuse(line, f"duplicate key {key!r}", "keep one of the two entries")
            result[key] = self.build(value_node, (*path, key), line)
            self.lines[(*path, key)] = line
        return result
