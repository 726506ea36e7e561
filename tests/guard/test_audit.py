"""The hash-chained audit trail: recording, continuing after restart, detecting tampering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from bastion.cli.audit import app as audit_cli
from bastion.guard import Principal
from bastion.guard.audit import AuditFormatError, AuditLog, JsonLinesSink, SqlAuditSink, read_jsonl, verify_entries

ALICE = Principal("user", "alice", frozenset(), issuer="https://issuer", client_id="web")
SYSTEM = Principal("api_key", "billing", frozenset(), api_key_id="k1")


def write_log(path: Path, count: int = 4) -> AuditLog:
    log = AuditLog([JsonLinesSink(path)], clock=lambda: 1_800_000_000.0)
    for i in range(count):
        log.record(
            "note.read",
            principal=ALICE if i % 2 == 0 else SYSTEM,
            outcome="allowed",
            object=f"note:{i}",
            request_id=f"req-{i}",
        )
    return log


def test_entry_records_who_what_which_outcome(tmp_path: Path) -> None:
    """An entry names the actor, action, object, outcome, request id and time."""
    log = AuditLog([JsonLinesSink(tmp_path / "a.jsonl")], clock=lambda: 5.0)
    entry = log.record("note.delete", principal=ALICE, outcome="denied", object="note:7", request_id="r1")

    assert {k: v for k, v in entry.items() if k != "hash"} == {
        "seq": 1,
        "time": 5.0,
        "actor": "user:alice",
        "sub": "alice",
        "client_id": "web",
        "api_key_id": None,
        "issuer": "https://issuer",
        "action": "note.delete",
        "object": "note:7",
        "outcome": "denied",
        "request_id": "r1",
        "details": {},
        "prev": "0" * 64,
    }


def test_chain_verifies_and_continues_after_restart(tmp_path: Path) -> None:
    """A new AuditLog on the same file continues the chain where it ended."""
    path = tmp_path / "audit.jsonl"
    first = write_log(path, 2)
    second = write_log(path, 2)
    result = verify_entries(read_jsonl(path), expected_head=second.head())

    assert (result.ok, result.count) == (True, 4)
    assert first.head() != second.head()


def _edit(lines: list[str]) -> list[str]:
    entry = json.loads(lines[1])
    entry["outcome"] = "denied"
    return [lines[0], json.dumps(entry), *lines[2:]]


@pytest.mark.parametrize(
    ("tamper", "error", "seq"),
    [
        pytest.param(_edit, "entry 2 was modified (hash mismatch)", 2, id="edit"),
        pytest.param(lambda lines: [lines[0], *lines[2:]], "expected seq 2, found 3", 2, id="delete"),
        pytest.param(lambda lines: [lines[1], lines[0], *lines[2:]], "expected seq 1, found 2", 1, id="reorder"),
    ],
)
def test_tampering_is_detected(tmp_path: Path, tamper: object, error: str, seq: int) -> None:
    """Editing, deleting, reordering or corrupting an entry breaks the chain at that entry."""
    path = tmp_path / "audit.jsonl"
    write_log(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(tamper(lines)) + "\n")  # type: ignore[operator]
    result = verify_entries(read_jsonl(path))

    assert (result.ok, result.error, result.seq) == (False, error, seq)


def test_a_line_that_is_not_json_is_a_format_error(tmp_path: Path) -> None:
    """A corrupt line is not an entry: reading it raises AuditFormatError naming the line."""
    path = tmp_path / "audit.jsonl"
    write_log(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], "{not json", *lines[2:]]) + "\n")

    with pytest.raises(AuditFormatError, match=r"^line 3: not JSON$"):
        verify_entries(read_jsonl(path))


def test_truncation_is_detected_with_anchored_head(tmp_path: Path) -> None:
    """Dropping the tail is caught when the head hash was anchored elsewhere."""
    path = tmp_path / "audit.jsonl"
    head = write_log(path).head()
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")

    result = verify_entries(read_jsonl(path), expected_head=head)

    assert (result.ok, result.error) == (False, "the chain does not end at the expected head (truncated?)")


def test_database_sink_mirrors_the_chain(tmp_path: Path) -> None:
    """With a table configured, the same chained entries land in the database."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    sink = SqlAuditSink(engine)
    log = AuditLog([JsonLinesSink(tmp_path / "audit.jsonl"), sink])
    for i in range(3):
        log.record("note.create", principal=ALICE, outcome="allowed", object=f"note:{i}")

    assert verify_entries(sink.entries(), expected_head=log.head()).ok
    assert list(sink.entries()) == list(read_jsonl(tmp_path / "audit.jsonl"))
    engine.dispose()


@pytest.mark.parametrize(
    ("tamper", "code", "output"),
    [
        pytest.param(False, 0, "ok: 4 entries, head ", id="intact"),
        pytest.param(
            True, 1, "broken at entry 2: entry 2 was modified (hash mismatch) (1 entries intact)", id="edited"
        ),
    ],
)
def test_cli_verify(tmp_path: Path, tamper: bool, code: int, output: str) -> None:
    """`bastion audit verify FILE` exits 0 for an intact chain and 1 naming the first bad entry."""
    path = tmp_path / "audit.jsonl"
    write_log(path)
    if tamper:
        path.write_text("\n".join(_edit(path.read_text().splitlines())) + "\n")

    result = CliRunner().invoke(audit_cli, ["verify", str(path)])

    assert result.exit_code == code
    assert result.output.startswith(output)


def test_cli_verify_database(tmp_path: Path) -> None:
    """`bastion audit verify --db URL --json` checks the table."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = sa.create_engine(url)
    log = AuditLog([SqlAuditSink(engine)])
    log.record("x", principal=None, outcome="allowed")
    engine.dispose()

    result = CliRunner().invoke(audit_cli, ["verify", "--db", url, "--json"])

    assert result.exit_code == 0
    assert json.loads(result.output) == {"count": 1, "error": None, "head": log.head(), "ok": True, "seq": None}


def test_cli_needs_a_source() -> None:
    """Without a file or --db the command exits 2."""
    assert CliRunner().invoke(audit_cli, ["verify"]).exit_code == 2
