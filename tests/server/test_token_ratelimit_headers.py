"""`RateLimit` fields on `/token` answers of a real `bastion serve`: admitted 200s carry them when
a per-client policy applies, each field once when an address policy applies too, and their `t`
agrees with `Retry-After` on the 429 and never exceeds the window `w`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.config import Settings
from tests._live import LiveServer, start_server

pytestmark = [pytest.mark.server]

POLICIES = """
[ratelimit.policies.token_per_client]
key = ["client_id"]
limit = "3/minute"
algorithm = "gcra"
routes = ["/token"]
"""
ADDRESS_POLICY = """
[ratelimit.policies.token_per_address]
key = ["source_address"]
limit = "100/minute"
algorithm = "sliding_window"
routes = ["/token"]
"""


def _serve(settings: Settings, tmp_path: Path, config: str) -> LiveServer:
    from tests.conftest import prepare

    path = tmp_path / "bastion.toml"
    path.write_text(config, encoding="utf-8")
    asyncio.run(prepare(settings))
    return start_server(settings, tmp_path, BASTION_CONFIG=str(path))


@pytest.fixture(params=["client", "client-and-address"])
def limited_server(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A server with a 3/minute per-client policy on /token (and a per-address one)."""
    config = POLICIES + (ADDRESS_POLICY if request.param == "client-and-address" else "")
    server = _serve(settings, tmp_path, config)
    try:
        yield server
    finally:
        server.stop()


def _fields(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k.startswith(("ratelimit", "retry-after"))]


def test_token_answers_carry_consistent_ratelimit_fields(limited_server: LiveServer) -> None:
    """Three 200s count down r with t within w; the 429's t is its Retry-After; each field once."""
    client = limited_server.create_client("--name", "Batch", "--grant", "client_credentials", "--scope", "read")
    auth = (client["client_id"], client["client_secret"])
    answers = [
        httpx.post(limited_server.url + "/token", data={"grant_type": "client_credentials"}, auth=auth, timeout=30)
        for _ in range(4)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    for answer, remaining in zip(answers[:3], (2, 1, 0), strict=True):
        fields = dict(_fields(answer))
        assert len(_fields(answer)) == 2, _fields(answer)
        assert '"token_per_client";q=3;w=60' in fields["ratelimit-policy"]
        name, r, t = fields["ratelimit"].split(";")
        assert (name, r) == ('"token_per_client"', f"r={remaining}")
        assert 0 < int(t.removeprefix("t=")) <= 60
    refused = dict(_fields(answers[3]))
    assert len(_fields(answers[3])) == 3, _fields(answers[3])
    assert refused["ratelimit"] == f'"token_per_client";r=0;t={refused["retry-after"]}'
    assert 1 <= int(refused["retry-after"]) <= 20
    assert answers[3].json()["error"] == "rate_limited"
