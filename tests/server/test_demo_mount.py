"""The example API at /demo in development mode, with `bastion demo token` (issue 5 wiring)."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_token_reads_own_notes_and_not_others(live_server):
    """A seeded user's genuine token lists their own notes; another user's note is not found."""
    alice = live_server.cli("demo", "token", "--user", "alice")
    bob = live_server.cli("demo", "token", "--user", "bob")
    assert alice.returncode == 0, alice.stderr
    assert bob.returncode == 0, bob.stderr
    alice_token, bob_token = alice.stdout.strip(), bob.stdout.strip()
    assert alice_token.count(".") == 2
    assert "\n" not in alice_token

    notes = httpx.get(f"{live_server.url}/demo/notes", headers={"authorization": f"Bearer {alice_token}"}, timeout=30)
    assert notes.status_code == 200
    titles = sorted(note["title"] for note in notes.json())
    assert titles == ["alice's note 1", "alice's note 2"]

    stolen = httpx.get(
        f"{live_server.url}/demo/notes/{notes.json()[0]['id']}",
        headers={"authorization": f"Bearer {bob_token}"},
        timeout=30,
    )
    assert stolen.status_code == 404
    assert httpx.get(f"{live_server.url}/demo/openapi.json", timeout=30).status_code == 200
    anonymous = httpx.get(f"{live_server.url}/demo/notes", timeout=30)
    assert anonymous.status_code == 401


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_demo_token_refused_outside_development_mode(live_server):
    """On PostgreSQL (not development mode) there are no demo users and no /demo."""
    result = live_server.cli("demo", "token", "--user", "alice")
    assert result.returncode == 2
    assert "development mode" in result.stderr
    assert httpx.get(f"{live_server.url}/demo/notes", timeout=30).status_code == 404
