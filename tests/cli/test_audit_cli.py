"""`bastion audit verify` through the real CLI: every malformed line is exit 2 with its number,
and a keyed chain (HMAC-SHA256) catches a file re-chained by someone without the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.guard import Principal
from bastion.guard.audit import AuditLog, JsonLinesSink, entry_hash
from tests.cli._run import bastion

ALICE = Principal("user", "alice", frozenset(), issuer="https://issuer", client_id="web")
KEY = b"audit-key-of-the-tests-not-a-secret-0123456789"


def _trail(path: Path, key: bytes | None = None) -> AuditLog:
    keyed = {"key": key} if key is not None else {}
    log = AuditLog([JsonLinesSink(path)], clock=lambda: 1_800_000_000.0, **keyed)
    for i in range(3):
        log.record("note.read", principal=ALICE, outcome="allowed", object=f"note:{i}")
    return log


def _rechain(path: Path) -> None:
    """What someone who can write the file but not read the key does: edit entry 2 and recompute
    every hash after it, keeping the old MACs."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    entries[1]["outcome"] = "denied"
    prev = "0" * 64
    for entry in entries:
        entry["prev"] = prev
        entry["hash"] = prev = entry_hash(entry)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        pytest.param("[1, 2]", "line 2: not a JSON object", id="array"),
        pytest.param('"entry"', "line 2: not a JSON object", id="string"),
        pytest.param("null", "line 2: not a JSON object", id="null"),
        pytest.param("{not json", "line 2: not JSON", id="invalid-json"),
        pytest.param('{"seq": 2, "hash": "x"}', "line 2: no `prev`", id="missing-prev"),
        pytest.param('{"prev": "x", "hash": "x"}', "line 2: no `seq`", id="missing-seq"),
        pytest.param('{"seq": "2", "prev": "x", "hash": "x"}', "line 2: `seq` is not an integer", id="seq-string"),
        pytest.param('{"seq": true, "prev": "x", "hash": "x"}', "line 2: `seq` is not an integer", id="seq-bool"),
        pytest.param('{"seq": 2, "prev": ["x"], "hash": "x"}', "line 2: `prev` is not a string", id="prev-list"),
        pytest.param('{"seq": 2, "prev": "x", "hash": 5}', "line 2: `hash` is not a string", id="hash-number"),
        pytest.param('{"seq": 2, "prev": "x", "hash": "x", "mac": {}}', "line 2: `mac` is not a string", id="mac"),
    ],
)
def test_a_malformed_line_is_exit_2_with_its_number(tmp_path: Path, line: str, problem: str) -> None:
    """A line that is not an audit entry is named by number with exit 2, never a traceback."""
    path = tmp_path / "audit.jsonl"
    _trail(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], line, *lines[1:]]) + "\n")

    result = bastion("audit", "verify", str(path))

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {path}: {problem}; not an audit trail Bastion wrote\n"


def test_invalid_utf8_line_is_exit_2(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a malformed line too."""
    path = tmp_path / "audit.jsonl"
    _trail(path)
    path.write_bytes(path.read_bytes() + b"\xff\xfe{}\n")

    result = bastion("audit", "verify", str(path))

    expected = f"error: {path}: line 4: not JSON; not an audit trail Bastion wrote\n"
    assert (result.returncode, result.stderr) == (2, expected)


def test_rechained_file_passes_the_plain_check_and_fails_the_keyed_one(tmp_path: Path) -> None:
    """Re-linking the hashes after an edit fools the unkeyed check; the HMAC under the key catches it."""
    path, key_file = tmp_path / "audit.jsonl", tmp_path / "audit.key"
    key_file.write_bytes(KEY + b"\n")
    _trail(path, KEY)
    intact_keyed = bastion("audit", "verify", str(path), "--key-file", str(key_file))
    _rechain(path)

    plain = bastion("audit", "verify", str(path))
    keyed = bastion("audit", "verify", str(path), "--key-file", str(key_file))
    keyed_by_env = bastion("audit", "verify", str(path), BASTION_AUDIT_KEY_FILE=str(key_file))

    assert (intact_keyed.returncode, intact_keyed.stdout[:15]) == (0, "ok: 3 entries, ")
    assert (plain.returncode, plain.stdout[:15]) == (0, "ok: 3 entries, ")
    broken = (
        "broken at entry 2: entry 2 has no valid MAC under the key (re-chained or written without it)"
        " (1 entries intact)\n"
    )
    assert (keyed.returncode, keyed.stdout) == (1, broken)
    assert (keyed_by_env.returncode, keyed_by_env.stdout) == (1, broken)


def test_unkeyed_trail_fails_the_keyed_check(tmp_path: Path) -> None:
    """A trail written without the key (or stripped of its MACs) does not pass --key-file."""
    path, key_file = tmp_path / "audit.jsonl", tmp_path / "audit.key"
    key_file.write_bytes(KEY)
    _trail(path)

    result = bastion("audit", "verify", str(path), "--key-file", str(key_file))

    assert (result.returncode, result.stdout) == (
        1,
        "broken at entry 1: entry 1 has no valid MAC under the key (re-chained or written without it)"
        " (0 entries intact)\n",
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(None, "cannot read the key file {key}: No such file or directory", id="missing"),
        pytest.param(b"short", "the key in {key} is shorter than 32 bytes", id="short"),
    ],
)
def test_an_unusable_key_file_is_exit_2(tmp_path: Path, content: bytes | None, problem: str) -> None:
    """A key file that cannot be read or is too short is a usage error."""
    path, key_file = tmp_path / "audit.jsonl", tmp_path / "audit.key"
    _trail(path)
    if content is not None:
        key_file.write_bytes(content)

    result = bastion("audit", "verify", str(path), "--key-file", str(key_file))

    assert (result.returncode, result.stderr) == (2, f"error: {problem.format(key=key_file)}\n")
