"""The example API at /demo in development mode, with `bastion demo token`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests._live import LiveServer, start_server


@pytest.fixture
def demo_server(settings, tmp_path) -> Iterator[LiveServer]:
    """A real server with the example API and its seeded users (BASTION_DEMO=1)."""
    import asyncio

    from tests.conftest import prepare

    asyncio.run(prepare(settings))
    server = start_server(settings, tmp_path, BASTION_DEMO="1")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_token_reads_own_notes_and_not_others(demo_server):
    """A seeded user's genuine token lists their own notes; another user's note is not found."""
    alice = demo_server.cli("demo", "token", "--user", "alice")
    bob = demo_server.cli("demo", "token", "--user", "bob")
    assert alice.returncode == 0, alice.stderr
    assert bob.returncode == 0, bob.stderr
    alice_token, bob_token = alice.stdout.strip(), bob.stdout.strip()
    assert alice_token.count(".") == 2
    assert "\n" not in alice_token

    notes = httpx.get(f"{demo_server.url}/demo/notes", headers={"authorization": f"Bearer {alice_token}"}, timeout=30)
    assert notes.status_code == 200
    titles = sorted(note["title"] for note in notes.json())
    assert titles == ["alice's note 1", "alice's note 2"]

    stolen = httpx.get(
        f"{demo_server.url}/demo/notes/{notes.json()[0]['id']}",
        headers={"authorization": f"Bearer {bob_token}"},
        timeout=30,
    )
    assert stolen.status_code == 404
    assert httpx.get(f"{demo_server.url}/demo/openapi.json", timeout=30).status_code == 200
    anonymous = httpx.get(f"{demo_server.url}/demo/notes", timeout=30)
    assert anonymous.status_code == 401


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_demo_token_refused_outside_development_mode(demo_server):
    """On PostgreSQL (not development mode) there are no demo users and no /demo."""
    result = demo_server.cli("demo", "token", "--user", "alice")
    assert result.returncode == 2
    assert "development mode" in result.stderr
    assert httpx.get(f"{demo_server.url}/demo/notes", timeout=30).status_code == 404
