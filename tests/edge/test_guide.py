"""docs/edge.md cannot rot: every policy block loads with the edge's loader, renders for nginx
and Caddy, and each proxy accepts what was rendered (`nginx -t`, `caddy validate`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.edge.policy import load
from bastion.edge.render import render, write
from tests._tls import make_pki
from tests.cli._run import clean_env

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "edge.md"
BLOCK = re.compile(r"<!-- test: (?P<name>[\w.-]+) -->\n```yaml\n(?P<text>.*?)```\n", re.S)


def guide_policies() -> dict[str, str]:
    """The guide's tested policy blocks, by file name."""
    return {m["name"]: m["text"] for m in BLOCK.finditer(GUIDE.read_text())}


def test_every_yaml_block_of_the_guide_is_tested() -> None:
    """No yaml block in docs/edge.md escapes the test: each one is marked with its file name."""
    assert GUIDE.read_text().count("```yaml") == len(guide_policies()) == 3
    assert set(guide_policies()) == {"both.yaml", "minimal.yaml", "edge-only.yaml"}


def test_the_guides_trust_but_verify_policy_is_the_threat_models() -> None:
    """The "both" deployment's policy is threatmodel/edge.yaml, word for word: the threat model
    judges what the guide shows."""
    assert guide_policies()["both.yaml"] == (ROOT / "threatmodel" / "edge.yaml").read_text()


CASES = [(name, proxy) for name in sorted(guide_policies()) for proxy in ("nginx", "caddy")]


@pytest.mark.parametrize(("name", "proxy"), CASES)
def test_each_policy_loads_renders_and_passes_the_proxys_check(name: str, proxy: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The block loads with bastion.edge.policy.load, `render` writes a configuration, and the
    proxy's own check accepts it."""
    monkeypatch.setenv("REPORTS_API_SECRET", "a test secret, not anybody's")
    pki = make_pki(tmp_path / "pki")
    (tmp_path / "tls").mkdir()
    files = ((pki.server_cert, "edge.pem"), (pki.server_key, "edge.key"), (pki.client_ca, "client-ca.pem"))
    for source, target in files:
        shutil.copy(source, tmp_path / "tls" / target)
    path = tmp_path / name
    path.write_text(guide_policies()[name])
    policy = load(path)
    assert policy.routes
    out = tmp_path / proxy
    write(render(policy, proxy, out), out)
    if proxy == "nginx":
        command = ["nginx", "-t", "-p", str(out), "-c", "nginx.conf", "-e", "logs/error.log"]
        env = clean_env()
    else:
        command = ["caddy", "validate", "--config", str(out / "Caddyfile"), "--adapter", "caddyfile"]
        env = clean_env(HOME=str(out), XDG_DATA_HOME=str(out / "data"), XDG_CONFIG_HOME=str(out / "data"))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
