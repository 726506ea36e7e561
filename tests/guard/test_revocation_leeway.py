"""A revoked token stays refused until exp + leeway, the time the validator stops accepting it
anyway, against a guarded API in its own uvicorn process fed by the issuer's revocation list."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.guard._issuer import TestIssuer
from tests.guard._live_api import running_api

INVALID = {"error": "invalid_token", "error_description": "The access token is invalid, expired or revoked."}


@pytest.mark.parametrize("shape", ["asgi", "fastapi"])
def test_revoked_token_is_refused_between_exp_and_exp_plus_leeway(
    live_issuer: TestIssuer, tmp_path: Path, shape: str
) -> None:
    """A revoked token presented after its exp but inside the 30 s leeway is refused as revoked,
    while the feed prunes its denylist every 50 ms (it was accepted again when entries went at exp)."""
    revocations = f"{live_issuer.issuer}/revocations"
    with running_api(shape, live_issuer, tmp_path, GUARD_REVOCATIONS=revocations) as api, httpx.Client() as http:
        jti = uuid.uuid4().hex
        exp = int(time.time()) + 3
        headers = {"Authorization": f"Bearer {live_issuer.mint(jti=jti, exp=exp)}"}
        assert http.get(api.url + "/notes", headers=headers).status_code == 200
        live_issuer.revoke(jti, exp)
        deadline = time.monotonic() + 30
        while http.get(api.url + "/notes", headers=headers).status_code == 200:
            assert time.monotonic() < deadline, "the revocation never reached the API"
            time.sleep(0.05)
        while time.time() < exp + 1.5:  # past exp, and past several prunes after it
            time.sleep(0.1)

        response = http.get(api.url + "/notes", headers=headers)

    assert (response.status_code, response.json()) == (401, INVALID)
