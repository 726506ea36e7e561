"""Key rotation is audited and never ties with the current key's activation."""

from __future__ import annotations

import json

import pytest

from bastion.keys import lifecycle, startup

pytestmark = pytest.mark.anyio


async def test_rotation_in_the_same_second_still_switches_keys(ctx, settings, capsys):
    """With no pre-publication, a rotation in the activation second of the current key still wins."""
    before = await lifecycle.schedules(ctx.database)
    current = max((k for k in before if k.alg == "ES256"), key=lambda k: k.activates_at)

    encryptor = startup.key_encryptor(settings)
    rotated = await lifecycle.rotate(ctx.database, encryptor, "ES256", settings.key_prepublication)

    assert rotated["activates_at"] > current.activates_at
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert {"event": "key_rotated", "kid": rotated["kid"], "previous_kid": current.kid}.items() <= events[-1].items()
    assert events[-1]["audit"] is True
