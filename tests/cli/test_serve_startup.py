"""`bastion serve` start-up, as an operator meets it: settings from the environment honoured,
every refusal (exit 2) made before anything is written and naming where the value came from,
and a banner that says what is served and how to begin.

Each case runs the real command in its own process. Refusals are matched by a distinctive part
of their message (the `error: SETTING (SOURCE):` prefix is pinned in test_serve_refusals.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests._live import free_port
from tests.cli._run import bastion, clean_env

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "BASTION_ISSUER": "https://auth.example.test",
    "BASTION_DATABASE_URL": "postgresql://bastion@127.0.0.1:1/bastion",  # never reached: refused before
}
GOOD_KEK = "a2V5LWVuY3J5cHRpb24ta2V5LW9mLTMyLWJ5dGVzLSE"  # 32 bytes in base64url
GOOD_PEPPER = "pepper-" + "p" * 40


@contextmanager
def _serving(*args: str, port: int, **env: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`bastion serve ARGS` until it answers on `port`; yields the process and its banner lines."""
    lines: list[str] = []
    process = subprocess.Popen(
        [sys.executable, "-m", "bastion", "serve", *args],
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited {process.returncode}: {process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("serve did not answer")
        yield process, lines
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        lines[:] = output.splitlines()


def _refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The one error line of a refusal (exit 2, no traceback) holding every fragment."""
    everything = result.stdout + result.stderr
    assert result.returncode == 2, everything
    assert "Traceback" not in everything
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, everything
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_bastion_port_and_host_are_honoured(tmp_path):
    """BASTION_PORT and BASTION_HOST choose where serve listens, and the issuer follows them."""
    port = free_port()
    with _serving("--data-dir", str(tmp_path / "data"), port=port, BASTION_PORT=str(port),
                  BASTION_HOST="127.0.0.1") as (_, lines):  # fmt: skip
        discovery = httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=10).json()

    assert discovery["issuer"] == f"http://127.0.0.1:{port}"
    assert f"  issuer:   http://127.0.0.1:{port}" in lines


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        pytest.param({"BASTION_PORT": "abc"}, ("port (BASTION_PORT):", "'abc' is not a whole number"), id="port-word"),
        pytest.param(
            {"BASTION_PORT": "99999"},
            ("port (BASTION_PORT): 99999 is outside 0-65535. Fix: choose a value in 0-65535",),
            id="port-range",
        ),
        pytest.param(
            {"BASTION_HOST": "203.0.113.1"}, ("issuer (BASTION_HOST):", "BASTION_ISSUER=https://"), id="public-host"
        ),
        pytest.param(
            {"BASTION_BEHIND_PROXY": "maybe"}, ("behind_proxy (BASTION_BEHIND_PROXY):", "true or false"), id="bool"
        ),
    ],
)
def test_a_wrong_environment_value_is_refused_naming_the_variable(tmp_path, env, fragments):
    """A wrong BASTION_* value: exit 2, one line naming the setting and its variable, nothing written."""
    result = bastion("serve", "--data-dir", str(tmp_path / "data"), **env)

    _refused(result, *fragments)
    assert not (tmp_path / "data").exists()


def test_public_host_behind_proxy_names_the_issuer_to_set(tmp_path):
    """`--host 0.0.0.0 --behind-proxy` without an issuer is told which variable to set."""
    result = bastion("serve", "--host", "0.0.0.0", "--behind-proxy", "--data-dir", str(tmp_path / "data"))  # noqa: S104

    _refused(result, "issuer (--host): is not set", "Fix: set BASTION_ISSUER=https://")


def test_config_file_errors_name_the_file_and_line(tmp_path):
    """A wrong value in the TOML file is reported as `SETTING (FILE:LINE)`."""
    config = tmp_path / "bastion.toml"
    config.write_text('# settings\nlog_level = "info"\n\n[ratelimit.shedding]\nenabled = true\nlimit = 0\n')
    result = bastion("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"))

    _refused(result, f"ratelimit.shedding.limit ({config}:6):")
    assert not (tmp_path / "data").exists()


def test_a_policy_keyed_on_nothing_known_is_refused_before_any_secret_is_written(tmp_path):
    """A bad rate-limit policy is refused before the database or development secrets exist."""
    config = tmp_path / "bastion.toml"
    config.write_text('[ratelimit.policies.per_tenant]\nlimit = "5/minute"\nkey = ["tenant"]\n')
    result = bastion("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"))

    _refused(result, f"ratelimit.policies.per_tenant.key ({config}:3):", "'tenant'")
    assert not (tmp_path / "data").exists()


def test_a_port_in_use_is_refused_before_the_banner(tmp_path):
    """A busy port: exit 2 naming the address and the option, no banner, nothing written."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = bastion("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))

    _refused(result, f"port (--port): 127.0.0.1:{port} is already in use", "choose another --port")
    assert "Bastion authorization server" not in result.stdout
    assert not (tmp_path / "data").exists()


def test_a_new_port_does_not_silently_move_the_issuer(tmp_path):
    """Data served as one issuer is refused on another port unless BASTION_ISSUER says so; then
    the change is announced and recorded."""
    data = tmp_path / "data"
    first, second = free_port(), free_port()
    with _serving("--port", str(first), "--data-dir", str(data), port=first):
        pass
    refused = bastion("serve", "--port", str(second), "--data-dir", str(data))
    with _serving("--port", str(second), "--data-dir", str(data), port=second,
                  BASTION_ISSUER=f"http://127.0.0.1:{second}") as (_, lines):  # fmt: skip
        pass

    _refused(refused, f"was served as http://127.0.0.1:{first}", f"set BASTION_ISSUER=http://127.0.0.1:{second}")
    notice = f"notice: issuer changes from http://127.0.0.1:{first} to http://127.0.0.1:{second} (BASTION_ISSUER)"
    assert notice in lines
    assert (data / "issuer").read_text().strip() == f"http://127.0.0.1:{second}"


def test_the_banner_names_the_data_dir_and_the_rate_limits(tmp_path):
    """The banner's first command carries the actual --data-dir, and the policies in force are listed."""
    port = free_port()
    data = tmp_path / "my data"
    with _serving("--port", str(port), "--data-dir", str(data), port=port) as (_, lines):
        pass

    assert (
        f"  first client: bastion clients create --data-dir '{data}' --name my-service "
        "--grant client_credentials --scope read"
    ) in lines
    assert "  rate limits:" in lines
    assert any(line.startswith("    client_auth_failures_per_address: 20 per 60 s by source_address") for line in lines)


@pytest.mark.parametrize("entry", ["*", "0.0.0.0/0", "::/0"])
def test_trusting_every_proxy_is_refused(tmp_path, entry):
    """trusted_proxies of `*`, 0.0.0.0/0 or ::/0 would let anyone forge X-Forwarded-For: exit 2."""
    result = bastion(
        "serve", "--behind-proxy", "--data-dir", str(tmp_path / "data"), BASTION_TRUSTED_PROXIES=f"127.0.0.1,{entry}"
    )

    _refused(result, "trusted_proxies (BASTION_TRUSTED_PROXIES):", f"{entry} trusts every address")


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        pytest.param(
            "BASTION_CLIENT_SECRET_PEPPER", "CHANGE_ME", "is still the placeholder CHANGE_ME", id="pepper-placeholder"
        ),
        pytest.param("BASTION_CLIENT_SECRET_PEPPER", "short-pepper", "is shorter than 32 bytes", id="pepper-short"),
        pytest.param(
            "BASTION_KEY_ENCRYPTION_KEY", "CHANGE_ME", "is still the placeholder CHANGE_ME", id="kek-placeholder"
        ),
        pytest.param("BASTION_KEY_ENCRYPTION_KEY", "c2hvcnQ", "is shorter than 32 bytes", id="kek-short"),
    ],
)
def test_placeholder_or_short_secrets_are_refused_outside_development(tmp_path, variable, value, problem):
    """Outside development mode the KEK and the pepper must be real: not CHANGE_ME, at least 32 bytes."""
    env = {**PRODUCTION, "BASTION_KEY_ENCRYPTION_KEY": GOOD_KEK, "BASTION_CLIENT_SECRET_PEPPER": GOOD_PEPPER}
    result = bastion("serve", "--data-dir", str(tmp_path / "data"), **{**env, variable: value})

    setting = variable.removeprefix("BASTION_").lower()
    _refused(result, f"{setting} ({variable}): {problem}", f"Fix: set {variable}")


def test_the_container_init_refuses_a_placeholder_pepper(tmp_path):
    """deploy/init.sh (the image's bastion-init) stops at its first command on a CHANGE_ME pepper."""
    bin_dir = Path(sys.executable).parent
    env = clean_env(**PRODUCTION, BASTION_KEY_ENCRYPTION_KEY=GOOD_KEK, BASTION_CLIENT_SECRET_PEPPER="CHANGE_ME")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["sh", str(REPO / "deploy" / "init.sh")], env=env, capture_output=True, text=True, check=False, timeout=60
    )

    _refused(result, "client_secret_pepper (BASTION_CLIENT_SECRET_PEPPER): is still the placeholder CHANGE_ME")
