"""deploy/healthcheck.py: the image's HEALTHCHECK finds where `bastion serve` listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import healthcheck
from tests._live import free_port


@pytest.mark.parametrize(
    ("argv", "arguments"),
    [
        pytest.param(
            ["/opt/bastion/bin/python3", "/opt/bastion/bin/bastion", "serve", "--port", "9000"],
            ["--port", "9000"],
            id="console-script",
        ),
        pytest.param(["python3", "-m", "bastion", "serve"], [], id="python-m"),
        pytest.param(["bastion", "db", "upgrade"], None, id="another-command"),
        pytest.param(["/usr/bin/catatonit", "--", "bastion"], None, id="init-process"),
        pytest.param(["python3", "-c", "from multiprocessing.spawn import spawn_main"], None, id="worker"),
    ],
)
def test_serve_arguments(argv: list[str], arguments: list[str] | None) -> None:
    """Only a `bastion serve` command line gives arguments: what follows `serve`."""
    assert healthcheck.serve_arguments(argv) == arguments


@pytest.mark.parametrize(
    ("arguments", "url"),
    [
        pytest.param(
            ["--host", "0.0.0.0", "--port", "8000", "--behind-proxy"],  # noqa: S104 - the image's CMD, as data
            "http://127.0.0.1:8000/health",
            id="cmd",
        ),
        pytest.param([], "http://127.0.0.1:8000/health", id="defaults"),
        pytest.param(["--port=9000", "--host=::"], "http://[::1]:9000/health", id="equals-ipv6-wildcard"),
        pytest.param(["--host", "10.1.2.3", "--port", "1", "--port", "2"], "http://10.1.2.3:2/health", id="last-wins"),
        pytest.param(["--tls-cert", "c.pem", "--tls-key", "k.pem"], "https://127.0.0.1:8000/health", id="tls"),
    ],
)
def test_health_url(arguments: list[str], url: str) -> None:
    """The probe goes where the flags bind: wildcards to loopback, TLS to https."""
    assert healthcheck.health_url(arguments) == url


def test_command_lines_are_read_oldest_first(tmp_path: Path) -> None:
    """Every numeric /proc entry's NUL-separated command line, by pid; other entries ignored."""
    for pid, raw in {"12": b"bastion\0serve\0", "3": b"sh\0-c\0x\0", "self": b"ignored\0"}.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(raw)
    (tmp_path / "40").mkdir()  # a process that exited while being read

    assert list(healthcheck.command_lines(tmp_path)) == [["sh", "-c", "x"], ["bastion", "serve"]]


def test_probe_names_an_unreachable_server() -> None:
    """A port nobody listens on is unhealthy, with the URL and the reason."""
    url = f"http://127.0.0.1:{free_port()}/health"

    problem = healthcheck.probe(url)

    assert problem is not None
    assert problem.startswith(f"{url}: <urlopen error [Errno 111] Connection refused")
