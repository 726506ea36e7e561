"""Schema errors name the file, the line and the fix."""

from __future__ import annotations

import pytest

from bastion.threatmodel import ThreatModelError, parse_model_text

BASE = """\
version: 1
name: Errors
assets:
  - {id: orders, classification: confidential}
boundaries:
  - {id: cloud}
processes:
  - id: api
    boundary: cloud
flows: []
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ThreatModelError) as info:
        parse_model_text(text, "m.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(BASE.replace("    boundary: cloud\n", "    boundary: cloud\n    hardend: true\n"),
                 "m.yaml:10: unknown key `hardend` in `processes.0` (fix: did you mean `hardened`?)",
                 id="unknown-key-suggests"),
    pytest.param(BASE.replace("    boundary: cloud\n", "    boundary: cloud\n    validates_input: yes please\n"),
                 "m.yaml:10: `validates_input` must be true or false (fix: write `validates_input: true`)",
                 id="bool-type"),
    pytest.param(BASE.replace("    boundary: cloud\n", "    boundary: clod\n"),
                 "m.yaml:8: unknown boundary `clod` (fix: did you mean `cloud`?)",
                 id="unknown-reference"),
    pytest.param(BASE.replace("  - {id: cloud}", "  - {id: api}"),
                 "m.yaml:8: id `api` is used twice (fix: give each element its own id)",
                 id="duplicate-id"),
    pytest.param(BASE.replace("confidential", "secret"),
                 "m.yaml:4: classification `secret` is unknown "
                 "(fix: use one of: public, internal, confidential, restricted)",
                 id="bad-classification"),
    pytest.param(BASE.replace("name: Errors\n", ""),
                 "m.yaml:1: the model needs `name` (fix: add `name: ...`)", id="missing-name"),
    pytest.param(BASE + "threats:\n  - id: BT-S01@api\n    status: accepted\n    reason: later\n",
                 "m.yaml:12: an accepted threat needs an owner (fix: add `owner: team-or-person`)",
                 id="accepted-without-owner"),
    pytest.param(BASE + "threats:\n  - id: BT-S01@api\n    status: mitigated\n",
                 "m.yaml:12: a mitigated threat must name its mitigation (fix: add `mitigation: ...`)",
                 id="mitigated-without-mitigation"),
    pytest.param(BASE + "threats:\n  - id: BT-S01@api\n    status: open\n    dread: {damage: 11, reason: x}\n",
                 "m.yaml:14: DREAD factor `damage` must be a whole number 0-10 (fix: write `damage: 5`)",
                 id="dread-out-of-range"),
    pytest.param(BASE + "threats:\n  - id: BT-S01@api\n    status: open\n    dread: {damage: 3}\n",
                 "m.yaml:14: a DREAD override needs the reason it was changed (fix: add `reason: ...`)",
                 id="dread-without-reason"),
    pytest.param(BASE.replace("flows: []", "flows:\n  - {id: f, from: api, to: nowhere}"),
                 "m.yaml:11: unknown element `nowhere` (fix: declare element `nowhere` first)",
                 id="flow-to-unknown"),
    pytest.param(BASE.replace("  - {id: cloud}", "  - {id: cloud, parent: cloud}"),
                 "m.yaml:6: boundary `cloud` is nested in itself (fix: remove one `parent` from the cycle)",
                 id="boundary-cycle"),
])
def test_schema_errors_carry_file_line_and_fix(text: str, expected: str) -> None:
    """Each kind of schema mistake is reported as file:line: message (fix: ...)."""
    assert expected in _problems(text)


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("name: x\nname: y\n", "m.yaml:2: duplicate key 'name' (fix: keep one of the two entries)",
                 id="duplicate-key"),
    pytest.param("name: x\nprocesses: [\n  - a\n", "m.yaml:3: YAML syntax error:", id="syntax"),
])
def test_yaml_level_errors_have_lines(text: str, expected: str) -> None:
    """Duplicate keys and syntax errors are located by line too."""
    assert _problems(text)[0].startswith(expected)


def test_every_problem_is_reported_at_once() -> None:
    """All problems of a model come back together, not one per run."""
    text = BASE.replace("    boundary: cloud\n", "    boundary: clod\n    hardend: true\n")
    assert len(_problems(text)) == 2
