"""`bastion serve` refuses unsafe or broken set-ups before binding: exit 2, one clear line, no traceback.

Each case runs the real command in its own process, as an operator or a script would.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests import _services
from tests._live import free_port
from tests.cli._run import bastion

ISSUER_FIX = "Fix: use an https:// issuer (tokens travel only over HTTPS), or a loopback host for development"


def _serve(tmp_path: Path, *args: str, **env: str) -> tuple[int, list[str], str]:
    result = bastion("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), *args, **env)
    return result.returncode, result.stderr.strip().splitlines(), result.stdout + result.stderr


def _assert_clean_refusal(code: int, lines: list[str], everything: str) -> None:
    assert code == 2, everything
    assert "Traceback" not in everything
    assert lines[-1].startswith("error: ")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        pytest.param(
            (),
            {"BASTION_ISSUER": "http://auth.example.test"},
            f"error: issuer (BASTION_ISSUER): http://auth.example.test is not https:// and its host is not loopback. "
            f"{ISSUER_FIX}",
            id="issuer-not-https",
        ),
        pytest.param(
            ("--host", "0.0.0.0"),  # noqa: S104 - the refusal under test
            {},
            "error: issuer (--host): is not set, and the default made from the host, http://0.0.0.0:PORT, is not "
            "https:// on a public address. Fix: set BASTION_ISSUER=https://YOUR.PUBLIC.HOST (the URL clients reach "
            "the server at, through the proxy when there is one)",
            id="public-host-default-issuer",
        ),
        pytest.param(
            ("--host", "0.0.0.0"),  # noqa: S104 - the refusal under test
            {"BASTION_ISSUER": "https://auth.example.test"},
            "error: --host 0.0.0.0 is not loopback and no TLS is configured. Fix: pass --tls-cert and --tls-key, "
            "or --behind-proxy when a TLS-terminating proxy is in front (RFC 9700 §4.13)",
            id="public-host-without-tls",
        ),
        pytest.param(
            (),
            {"BASTION_ACCESS_TOKEN_LIFETIME": "0"},
            "error: access_token_lifetime (BASTION_ACCESS_TOKEN_LIFETIME): 0 minutes is outside 1-60 minutes. Fix: "
            "choose a value in 1-60",
            id="lifetime-0",
        ),
        pytest.param(
            (),
            {"BASTION_ACCESS_TOKEN_LIFETIME": "61"},
            "error: access_token_lifetime (BASTION_ACCESS_TOKEN_LIFETIME): 61 minutes is outside 1-60 minutes. Fix: "
            "choose a value in 1-60",
            id="lifetime-61",
        ),
        pytest.param(
            ("--workers", "2"),
            {},
            "error: --workers 2 needs Redis for the stores the workers must share (rate limits, replay caches). "
            "Fix: set BASTION_REDIS_URL=redis://HOST:6379/0, or run with --workers 1",
            id="workers-without-redis",
        ),
        pytest.param(
            ("--tls-cert", "cert.pem"),
            {},
            "error: --tls-cert and --tls-key go together; give both to serve HTTPS",
            id="tls-cert-without-key",
        ),
    ],
)
def test_serve_refuses_with_one_line_and_exit_2(tmp_path, args, env, expected):
    """Each unsafe set-up is refused with exit 2 and exactly one line naming the setting and the fix."""
    port = free_port()
    result = bastion("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), *args, **env)
    everything = result.stdout + result.stderr

    assert result.returncode == 2, everything
    assert result.stderr.strip().splitlines() == [expected.replace("PORT", str(port))]
    assert "Traceback" not in everything
    assert not (tmp_path / "data" / "bastion.db").exists()


def test_unknown_config_key_is_refused_naming_closest(tmp_path):
    """`serve --config` with a misspelt key exits 2 naming the file, the key and the closest setting."""
    config = tmp_path / "bastion.toml"
    config.write_text("acces_token_lifetime = 5\n", encoding="utf-8")
    code, lines, everything = _serve(tmp_path, "--config", str(config))

    _assert_clean_refusal(code, lines, everything)
    assert lines == [
        f"error: acces_token_lifetime ({config}:1): unknown setting. Fix: did you mean 'access_token_lifetime'?"
    ]


def test_unknown_environment_variable_warns_with_closest_name(tmp_path):
    """A misspelt BASTION_* variable is reported with the closest known name (here before another refusal)."""
    code, lines, everything = _serve(tmp_path, "--workers", "2", BASTION_ACESS_TOKEN_LIFETIME="5")

    _assert_clean_refusal(code, lines, everything)
    assert lines[0] == (
        "warning: unknown environment variable BASTION_ACESS_TOKEN_LIFETIME is ignored; "
        "did you mean BASTION_ACCESS_TOKEN_LIFETIME?"
    )


def test_unreachable_postgresql_exits_2_without_password(tmp_path):
    """A PostgreSQL URL that cannot be reached: exit 2, one line naming the redacted URL, no traceback."""
    url = "postgresql://bastion:hunter2-secret@127.0.0.1:1/bastion"
    code, lines, everything = _serve(tmp_path, BASTION_DATABASE_URL=url)

    _assert_clean_refusal(code, lines, everything)
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot connect to postgresql+asyncpg://bastion:***@127.0.0.1:1/bastion: ")
    assert "hunter2-secret" not in everything


def test_unmigrated_postgresql_is_refused_with_the_command_to_run(tmp_path):
    """An empty PostgreSQL database is not migrated by serve: it exits 2 naming `bastion db upgrade`."""
    import asyncpg

    base = _services.need_postgres()
    name = f"bastion_unmigrated_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = base.rsplit("/", 1)[0] + "/" + name
        code, lines, everything = _serve(tmp_path, BASTION_DATABASE_URL=url)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    _assert_clean_refusal(code, lines, everything)
    assert len(lines) == 1
    assert "is at revision none" in lines[0]
    assert lines[0].endswith("Fix: run `bastion db upgrade` with the same BASTION_DATABASE_URL")
