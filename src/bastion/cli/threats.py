"""`bastion threats`: threat modeling from the command line (see bastion.threatmodel).

Exit codes: 0 success; 1 the gate failed (open threats at or above --fail-on), a verified
test failed or was not found, or `diff` found threats the new model adds; 2 the model, a rule
file or an argument is wrong (every problem printed with file:line and the fix).

`report --format svg|png` needs Graphviz (the `dot` program on PATH); dot and mermaid do not.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec

import typer

from bastion.threatmodel import (
    STARTER_MODEL,
    ThreatModelError,
    analyse,
    analyse_file,
    diff,
    failing,
    load_library,
    new_threat_ids,
    parse_model_text,
    rules_for,
)
from bastion.threatmodel.evidence import not_found
from bastion.threatmodel.files import git_show
from bastion.threatmodel.files import verify as run_verify
from bastion.threatmodel.model import STATUSES
from bastion.threatmodel.render import render
from bastion.threatmodel.render.tabular import diff_to_json, rules_to_json

app = typer.Typer(help="Threat modeling: STRIDE per element, DREAD, OWASP API Top 10.", no_args_is_help=True)


class Format(StrEnum):
    html = "html"
    md = "md"
    json = "json"
    csv = "csv"
    sarif = "sarif"
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"
    png = "png"


class TextFormat(StrEnum):
    text = "text"
    json = "json"


class Band(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


RulesOpt = Annotated[
    list[Path] | None, typer.Option("--rules", help="Extra rule library file (repeatable).")
]
EvidenceOpt = Annotated[
    bool, typer.Option("--require-evidence", help="Count mitigations without passing evidence as open.")
]


def _fail(exc: ThreatModelError) -> typer.Exit:
    for problem in exc.problems:
        typer.echo(f"error: {problem}", err=True)
    return typer.Exit(2)


P = ParamSpec("P")


def _exits_2_on_surprise(command: Callable[P, None]) -> Callable[P, None]:
    """Anything a command did not foresee is exit 2 with one line, never a traceback's exit 1,
    which a CI gate would read as "open threats" (or a failed test) rather than "bad input"."""

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # the point: no input may look like a gate result
            typer.echo(f"error: cannot process the input: {exc.__class__.__name__}: {exc}"[:500], err=True)
            raise typer.Exit(2) from None

    return guarded


def _extra(rules: list[Path] | None) -> list[str | Path]:
    return list(rules or [])


@app.command()
@_exits_2_on_surprise
def report(
    model: Path,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", "-f", help="Output format; svg and png need Graphviz (`dot` on PATH), dot and mermaid do not."
        ),
    ] = Format.md,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    rules: RulesOpt = None,
    require_evidence: EvidenceOpt = False,
) -> None:
    """Write the report: html, md, json, csv, sarif, or the DFD as dot, mermaid, svg, png.

    svg and png are drawn by Graphviz: install it (Debian/Ubuntu: apt install graphviz; macOS:
    brew install graphviz) or use --format dot or mermaid.
    """
    try:
        analysis = analyse_file(model, _extra(rules), require_evidence=require_evidence)
        content = render(analysis, fmt.value)
    except ThreatModelError as exc:
        raise _fail(exc) from exc
    except RuntimeError as exc:  # svg/png without Graphviz
        typer.echo(f"error: {exc}; use --format dot or mermaid, or install graphviz", err=True)
        raise typer.Exit(2) from exc
    if output is not None:
        if isinstance(content, bytes):
            output.write_bytes(content)
        else:
            output.write_text(content, "utf-8")
    elif isinstance(content, bytes):
        sys.stdout.buffer.write(content)
    else:
        typer.echo(content, nl=False)


@app.command()
@_exits_2_on_surprise
def check(
    model: Path,
    fail_on: Annotated[
        Band, typer.Option("--fail-on", help="Fail on open threats in this band or above.")
    ] = Band.high,
    new_since: Annotated[
        str | None,
        typer.Option("--new-since", help="Gate only threats introduced since this git revision."),
    ] = None,
    rules: RulesOpt = None,
    require_evidence: EvidenceOpt = False,
    max_evidence_age: Annotated[
        int | None,
        typer.Option("--max-evidence-age", min=0, help="Ignore evidence older than DAYS (implies --require-evidence)."),
    ] = None,
) -> None:
    """Exit 1 while an open threat at or above --fail-on remains."""
    try:
        analysis = analyse_file(model, _extra(rules), require_evidence=require_evidence,
                                max_evidence_age_days=max_evidence_age)
        only = None
        if new_since is not None:
            old_text = git_show(model, new_since)
            old = None
            if old_text is not None:
                old_model = parse_model_text(old_text, f"{model}@{new_since}")
                old = analyse(old_model, rules_for(analysis.model, _extra(rules)))
            only = new_threat_ids(old, analysis)
    except ThreatModelError as exc:
        raise _fail(exc) from exc
    for warning in analysis.warnings:
        typer.echo(f"warning: {warning}", err=True)
    bad = failing(analysis, fail_on.value, only)
    scope = f" introduced since {new_since}" if new_since else ""
    for a in bad:
        typer.echo(f"OPEN {a.score.band:8} {a.score.value:4.1f}  {a.id}  {a.rule.title}"
                   + (f"  [{a.note}]" if a.note else ""))
    counts = {s: len(analysis.by_status(s)) for s in STATUSES}
    summary = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items())
    if bad:
        typer.echo(f"FAIL: {len(bad)} open threat(s){scope} at or above {fail_on.value} ({summary})")
        raise typer.Exit(1)
    typer.echo(f"OK: no open threat{scope} at or above {fail_on.value} ({summary})")


@app.command()
@_exits_2_on_surprise
def verify(
    model: Path,
    allow_commands: Annotated[
        bool,
        typer.Option("--allow-commands", help="Also run command lines the model names (only for a model you trust)."),
    ] = False,
) -> None:
    """Run the pytest node ids each mitigation names; write MODEL's .results.json beside it.

    Exit 1 when a test fails or does not exist ("test not found: NAME")."""
    try:
        evidence = run_verify(model, allow_commands=allow_commands)
    except ThreatModelError as exc:
        raise _fail(exc) from exc
    missing = [e for e in evidence if not_found(e)]
    for e in evidence:
        if not_found(e):
            typer.echo(f"FAIL  test not found: {e.test}")
        else:
            typer.echo(f"{'PASS' if e.passed else 'FAIL'}  {e.test}")
    failed = sum(not e.passed for e in evidence)
    unfound = f" ({len(missing)} not found)" if missing else ""
    typer.echo(f"{len(evidence) - failed} passed, {failed} failed{unfound}")
    if failed:
        raise typer.Exit(1)


@app.command("diff")
@_exits_2_on_surprise
def diff_cmd(
    old: Path,
    new: Path,
    fmt: Annotated[TextFormat, typer.Option("--format", "-f", help="text or json")] = TextFormat.text,
    rules: RulesOpt = None,
) -> None:
    """Threats added, removed and re-scored between two models.

    Exit 0 when NEW adds no threat, 1 when it does (a CI gate on new threats), 2 on bad input."""
    try:
        d = diff(analyse_file(old, _extra(rules)), analyse_file(new, _extra(rules)))
    except ThreatModelError as exc:
        raise _fail(exc) from exc
    if fmt is TextFormat.json:
        typer.echo(diff_to_json(d), nl=False)
        raise typer.Exit(1 if d.added else 0)
    for a in d.added:
        typer.echo(f"+ {a.id}  {a.score.value:.1f} {a.score.band}  {a.effective}  {a.rule.title}")
    for a in d.removed:
        typer.echo(f"- {a.id}  {a.score.value:.1f} {a.score.band}  {a.rule.title}")
    for c in d.changed:
        typer.echo(f"~ {c.id}  {c.old_score:.1f} {c.old_band} -> {c.new_score:.1f} {c.new_band}"
                   f"  {c.old_status} -> {c.new_status}")
    typer.echo(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed")
    raise typer.Exit(1 if d.added else 0)


@app.command("rules")
@_exits_2_on_surprise
def rules_cmd(
    rules: RulesOpt = None,
    fmt: Annotated[TextFormat, typer.Option("--format", "-f", help="text or json")] = TextFormat.text,
) -> None:
    """List the rule library (shipped rules plus --rules files)."""
    try:
        library = load_library(_extra(rules))
    except ThreatModelError as exc:
        raise _fail(exc) from exc
    if fmt is TextFormat.json:
        typer.echo(rules_to_json(library), nl=False)
        return
    for r in library:
        typer.echo(f"{r.id:8} {r.stride} {','.join(r.applies_to):16} {r.owasp_api or '':10} {r.title}")
    typer.echo(f"{len(library)} rules")


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter model.")] = Path("threatmodel.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter model."""
    if path.exists() and not force:
        typer.echo(f"error: {path} exists; pass --force to overwrite", err=True)
        raise typer.Exit(2)
    path.write_text(STARTER_MODEL, "utf-8")
    typer.echo(f"wrote {path}; next: bastion threats report {path} --format html -o report.html")
