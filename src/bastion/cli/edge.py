"""`bastion edge`: the decision service a proven proxy (nginx, Caddy) asks about each request.

`serve` answers nginx `auth_request` and Caddy `forward_auth` subrequests on `/decide` from a
policy file (see bastion.edge). Exit codes: 0 stopped cleanly; 2 the policy or an argument is
wrong (every problem printed as `error: FILE:LINE: FIELD: problem (fix: ...)`).
"""

from __future__ import annotations

import errno
import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli import edge_init
from bastion.cli._common import fail
from bastion.edge import Policy, PolicyError, load

app = typer.Typer(help="The edge: a decision service behind nginx or Caddy.", no_args_is_help=True)

app.command("init")(edge_init.init)

PolicyOpt = Annotated[Path, typer.Option("--policy", help="The edge policy file (YAML).")]


def load_policy(path: Path) -> Policy:
    """The policy at `path`, or exit 2 with every problem on stderr."""
    try:
        return load(path)
    except PolicyError as exc:
        for problem in exc.problems[:-1]:
            typer.echo(f"error: {problem}", err=True)
        raise fail(str(exc.problems[-1])) from None


def _check_address(host: str, port: int, source: str) -> None:
    """Bind once, as uvicorn will, so a busy port or a foreign address is a clear refusal (exit 2)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            problem = "is already in use by another process" if exc.errno == errno.EADDRINUSE \
                else f"cannot be bound ({exc.strerror})"
            raise fail(f"decision ({source}): {host}:{port} {problem}. "
                       "Fix: choose a free --port, or an address of this machine with --host") from None


@app.command("serve")
def serve(
    policy: PolicyOpt,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: the policy's "
                                                        "`decision`, else 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: the policy's `decision`).")] = None,
) -> None:
    """Answer the proxy's decision subrequests on http://HOST:PORT/decide."""
    import uvicorn

    from bastion.edge.decision import build_app

    loaded = load_policy(policy)
    bind_host = host or loaded.decision[0]
    bind_port = port if port is not None else loaded.decision[1]
    _check_address(bind_host, bind_port, "command line" if host or port is not None else str(policy))
    typer.echo(f"bastion edge: deciding for {loaded.upstream} on http://{bind_host}:{bind_port}/decide", err=True)
    # As `bastion serve`: uvloop and httptools (uvicorn[standard]), no access log (each decision
    # writes its own audit line), the lifespan required (it discovers the issuer).
    uvicorn.run(build_app(loaded), host=bind_host, port=bind_port, log_level="warning",
                access_log=False, server_header=False, proxy_headers=False, lifespan="on",
                loop="uvloop" if sys.platform != "win32" else "asyncio", http="httptools")


class Proxy(StrEnum):
    nginx = "nginx"
    caddy = "caddy"


@app.command("render")
def render(
    proxy: Annotated[Proxy, typer.Argument(help="The proxy to configure: nginx or caddy.")],
    policy: PolicyOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the configuration into.")],
) -> None:
    """Write a complete nginx or Caddy configuration for the policy, runnable without root from OUTPUT.

    nginx: `nginx -p OUTPUT -c nginx.conf -e logs/error.log -g 'daemon off;'`;
    Caddy: `XDG_CONFIG_HOME=OUTPUT/data XDG_DATA_HOME=OUTPUT/data caddy run --config OUTPUT/Caddyfile
    --adapter caddyfile` (the variables keep Caddy 2.6's autosave.json inside OUTPUT too).
    """
    from bastion.edge.render import RenderError, write
    from bastion.edge.render import render as render_files

    loaded = load_policy(policy)
    try:
        files = render_files(loaded, proxy.value, output)
    except RenderError as exc:
        raise fail(f"{policy}: {exc}") from None
    for path in write(files, output):
        typer.echo(str(path))
