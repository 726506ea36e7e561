"""`bastion audit`: check the guard's hash-chained audit trail (see bastion.guard.audit).

Exit codes: 0 the chain is intact; 1 it is broken (the first bad entry is named); 2 a wrong
argument (missing file, unreachable database).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from bastion.guard.audit import SqlAuditError, SqlAuditSink, read_jsonl, verify_entries

app = typer.Typer(help="Audit trail: verify its hash chain.", no_args_is_help=True)


@app.callback()
def audit() -> None:
    """Audit trail: verify its hash chain."""


@app.command()
def verify(
    path: Annotated[Path | None, typer.Argument(help="A JSON-lines audit file.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of an audit table instead.")] = None,
    table: Annotated[str, typer.Option("--table", help="Audit table name.")] = "audit_log",
    head: Annotated[str | None, typer.Option("--head", help="The head hash anchored elsewhere.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Verify the chain: sequence, links and hashes; optionally that it ends at --head."""
    if (path is None) == (db is None):
        typer.echo("error: give either an audit file or --db URL", err=True)
        raise typer.Exit(2)
    if path is not None:
        if not path.is_file():
            typer.echo(f"error: no audit file at {path}", err=True)
            raise typer.Exit(2)
        result = verify_entries(read_jsonl(path), expected_head=head)
    else:
        try:
            sink = SqlAuditSink.from_url(str(db), table)
            result = verify_entries(sink.entries(), expected_head=head)
        except SqlAuditError as exc:
            typer.echo(f"error: cannot read the audit table: {exc}", err=True)
            raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(asdict(result), sort_keys=True))
    elif result.ok:
        typer.echo(f"ok: {result.count} entries, head {result.head}")
    else:
        typer.echo(f"broken at entry {result.seq}: {result.error} ({result.count} entries intact)")
    raise typer.Exit(0 if result.ok else 1)
