"""Errors of the threat-modeling tool: each one names the file, the line and the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a model or rule file, located and with the fix spelled out."""

    file: str
    line: int
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class ThreatModelError(Exception):
    """A model, rule library or results file could not be used; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ExpressionError(Exception):
    """A rule condition is not in the safe expression language, or failed on an element."""
