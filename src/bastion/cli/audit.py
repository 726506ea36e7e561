"""`bastion audit`: check a hash-chained audit trail: the server's, in its database
(`bastion.server.audit_trail`), or the guard's, in a file or a table (`bastion.guard.audit`).

`--db URL` takes the URL the server takes (`BASTION_DATABASE_URL`: `postgresql://`, `sqlite:///`)
and reads its `audit_log` table through the store, page by page; each row must also agree with
its entry (seq, hash and the columns copied from it), so a row whose columns were edited is
reported as broken at its seq. Another `--table` is read as the guard's `SqlAuditSink` reads it.

Exit codes: 0 the chain is intact; 1 it is broken (the first bad entry is named); 2 a wrong
argument or input (missing file, unreachable database, a key file that cannot be read, a line
that is not an audit entry, named by its number).

`--key-file` (or `BASTION_AUDIT_KEY_FILE`) names the file holding the key the trail was written
under (`AuditLog(key=...)`): every entry must then carry a valid HMAC, so a file re-chained by
someone who could write it but not read the key fails.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bastion.config import normalise_database_url
from bastion.guard.audit import (
    AuditFormatError,
    SqlAuditError,
    SqlAuditSink,
    VerifyResult,
    check_entry,
    read_jsonl,
    verify_entries,
)
from bastion.store import Database, DatabaseUnavailable
from bastion.store import audit as audit_store
from bastion.store.audit import AuditRow

SERVER_TABLE = "audit_log"
# The row's columns that copy a member of its entry.
_COPIED = ("seq", "actor", "action", "object", "outcome", "request_id", "hash")


class RowMismatch(Exception):
    """A row whose columns disagree with its entry (edited outside the chain)."""

    def __init__(self, seq: int, column: str) -> None:
        super().__init__(f"row seq {seq}: its `{column}` column differs from its entry")
        self.seq = seq


app = typer.Typer(help="Audit trail: verify its hash chain.", no_args_is_help=True)


@app.callback()
def audit() -> None:
    """Audit trail: verify its hash chain."""


@app.command()
def verify(
    path: Annotated[Path | None, typer.Argument(help="A JSON-lines audit file.")] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="The server's database URL (its audit_log trail), or a SQLAlchemy URL with --table."),
    ] = None,
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
        elif table == SERVER_TABLE:
            result = _verify_server_trail(str(db), head, key)
        else:
            sink = SqlAuditSink.from_url(str(db), table)
            result = verify_entries(sink.entries(), expected_head=head, key=key)
    except RowMismatch as exc:
        result = VerifyResult(False, exc.seq - 1, "", str(exc), exc.seq)
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


def _verify_server_trail(url: str, head: str | None, key: bytes | None) -> VerifyResult:
    url = normalise_database_url(url)
    if url.startswith("sqlite") and not Path(url.split(":///", 1)[1]).is_file():
        _refuse(f"no database at {url.split(':///', 1)[1]}")
    with asyncio.Runner() as runner:
        database = Database(url, pool_size=1)
        try:
            return verify_entries(_server_entries(runner, database), expected_head=head, key=key)
        finally:
            runner.run(database.dispose())


def _server_entries(runner: asyncio.Runner, database: Database) -> Iterator[dict[str, Any]]:
    """The entries of the server's trail, a page at a time, each checked against its row."""
    after = 0
    while True:
        try:
            rows = runner.run(audit_store.page(database, after))
        except DatabaseUnavailable as exc:
            _refuse(str(exc))
        except Exception as exc:  # the driver's own error: no such table, a column missing
            _refuse(f"cannot read the audit table: {type(exc).__name__}: {exc}")
        if not rows:
            return
        for row in rows:
            yield _entry_of(row)
        after = rows[-1].seq


def _entry_of(row: AuditRow) -> dict[str, Any]:
    where = f"row seq {row.seq}"
    try:
        entry = json.loads(row.entry)
    except ValueError:
        raise AuditFormatError(f"{where}: not JSON") from None
    check_entry(entry, where)
    for column in _COPIED:
        if entry.get(column) != getattr(row, column):
            raise RowMismatch(row.seq, column)
    return dict(entry)


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
