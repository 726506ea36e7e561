"""`bastion audit`: check the guard's hash-chained audit trail (see bastion.guard.audit).

Exit codes: 0 the chain is intact; 1 it is broken (the first bad entry is named); 2 a wrong
argument or input (missing file, unreachable database, a key file that cannot be read, a line
that is not an audit entry, named by its number).

`--key-file` (or `BASTION_AUDIT_KEY_FILE`) names the file holding the key the trail was written
under (`AuditLog(key=...)`): every entry must then carry a valid HMAC, so a file re-chained by
someone who could write it but not read the key fails.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bastion.guard.audit import AuditFormatError, SqlAuditError, SqlAuditSink, read_jsonl, verify_entries

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
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", envvar="BASTION_AUDIT_KEY_FILE", help="Check every entry's HMAC under this key."),
    ] = None,
) -> None:
    """Verify the chain: sequence, links and hashes; optionally that it ends at --head and that
    every entry carries the HMAC of the key in --key-file."""
    if (path is None) == (db is None):
        _refuse("give either an audit file or --db URL")
    key = _read_key(key_file) if key_file is not None else None
    try:
        if path is not None:
            if not path.is_file():
                _refuse(f"no audit file at {path}")
            result = verify_entries(read_jsonl(path), expected_head=head, key=key)
        else:
            sink = SqlAuditSink.from_url(str(db), table)
            result = verify_entries(sink.entries(), expected_head=head, key=key)
    except AuditFormatError as exc:
        _refuse(f"{path if path is not None else table}: {exc}; not an audit trail Bastion wrote")
    except SqlAuditError as exc:
        _refuse(f"cannot read the audit table: {exc}")
    if as_json:
        typer.echo(json.dumps(asdict(result), sort_keys=True))
    elif result.ok:
        typer.echo(f"ok: {result.count} entries, head {result.head}")
    else:
        typer.echo(f"broken at entry {result.seq}: {result.error} ({result.count} entries intact)")
    raise typer.Exit(0 if result.ok else 1)


def _refuse(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _read_key(path: Path) -> bytes:
    """The key in `path`: its bytes without surrounding whitespace, at least 32 of them."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        _refuse(f"cannot read the key file {path}: {os.strerror(exc.errno or 0)}")
    if len(key) < 32:
        _refuse(f"the key in {path} is shorter than 32 bytes")
    return key
