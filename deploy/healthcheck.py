#!/usr/bin/env python3
"""The container's HEALTHCHECK: GET /health on the address `bastion serve` listens on.

The address is read from the serving process's own command line (/proc), so a container
started with another `--port`, `--host` or with TLS is checked where it really listens, not
on a port written into the image. Exit 0 when /health answers 200, 1 otherwise (the reason on
stderr, which `podman inspect` and `docker inspect` show). Standard library only.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_PORT = 8000
# A wildcard bind is reached on the loopback address of its family.
LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - names binds, binds nothing


def serve_arguments(argv: Sequence[str]) -> list[str] | None:
    """The arguments after `bastion serve` in a command line, or None when it is not one."""
    for index, word in enumerate(argv[:-1]):
        if os.path.basename(word) == "bastion" and argv[index + 1] == "serve":
            return list(argv[index + 2 :])
    return None


def option(arguments: Sequence[str], name: str) -> str | None:
    """The last value of `--name VALUE` or `--name=VALUE` (the last one wins, as in the CLI)."""
    value = None
    for index, word in enumerate(arguments):
        if word == name and index + 1 < len(arguments):
            value = arguments[index + 1]
        elif word.startswith(name + "="):
            value = word.partition("=")[2]
    return value


def health_url(arguments: Sequence[str]) -> str:
    """Where a server started with these `serve` arguments answers /health."""
    host = option(arguments, "--host") or "127.0.0.1"
    host = LOOPBACK.get(host, host)
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if option(arguments, "--tls-cert") else "http"
    return f"{scheme}://{shown}:{option(arguments, '--port') or DEFAULT_PORT}/health"


def command_lines(proc: Path = Path("/proc")) -> Iterable[list[str]]:
    """The command line of every process of this container, oldest (lowest pid) first."""
    pids = sorted(int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
    for pid in pids:
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        yield [word.decode(errors="replace") for word in raw.split(b"\0") if word]


def probe(url: str) -> str | None:
    """None when `url` answers 200, else what went wrong."""
    context = None
    if url.startswith("https:"):
        # A liveness probe on loopback: the certificate names the public host, not 127.0.0.1.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=8, context=context) as response:  # noqa: S310 - http(s) only
            return None if response.status == 200 else f"{url} answered {response.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def main() -> int:
    for argv in command_lines():
        arguments = serve_arguments(argv)
        if arguments is not None:
            problem = probe(health_url(arguments))
            if problem is not None:
                print(f"unhealthy: {problem}", file=sys.stderr)
                return 1
            return 0
    print("unhealthy: no `bastion serve` process in this container", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
