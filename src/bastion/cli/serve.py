"""`bastion serve`: start the authorization server. Scripts rely on these flags."""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from bastion.cli._common import describe_policies, fail, run, settings_for
from bastion.cli._options import ConfigOption, DataDirOption
from bastion.config import DERIVED_ISSUER, ConfigError, Settings, is_loopback_host, record_issuer, recorded_issuer
from bastion.server import open_context
from bastion.server.limits import ServerLimits, build_limiter


def _preflight(settings: Settings) -> None:
    """Check what can be checked without writing (the rate-limit policies, the port), then open
    everything once before binding, so every refusal is a clear message and exit 2."""
    try:
        ServerLimits(build_limiter(settings))
    except (ValueError, KeyError) as exc:
        raise fail(f"ratelimit: {exc}. Fix: correct the [ratelimit.policies] table") from None
    _check_port_free(settings)

    async def go() -> None:
        ctx = await open_context(settings)
        await ctx.close()

    run(go())


def _check_port_free(settings: Settings) -> None:
    """Bind the address once, as uvicorn will, so a busy port is refused before the banner."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            address = f"{settings.host}:{settings.port}"
            if exc.errno == errno.EADDRINUSE:
                error = ConfigError(
                    "port",
                    f"{address} is already in use by another process",
                    "stop the process listening there, or choose another --port",
                    source=settings.sources.get("port", "default"),
                )
            else:
                error = ConfigError(
                    "host",
                    f"{address} cannot be bound ({exc.strerror})",
                    "use an address of this machine (--host) and a free port (--port)",
                    source=settings.sources.get("host", "default"),
                )
            raise fail(str(error)) from None


def _check_issuer_kept(settings: Settings) -> None:
    """The data directory's issuer changes only when BASTION_ISSUER says so.

    Tokens, sessions and every client's configuration name the issuer; serving the same data on
    another address by accident (`--port` alone) would break them all, so it is refused. An
    issuer set explicitly (BASTION_ISSUER, the config file) is a deliberate move: it is
    announced and recorded.
    """
    before = recorded_issuer(settings.data_dir)
    if before is None or before == settings.issuer:
        return
    source = settings.sources.get("issuer", "")
    if source not in (DERIVED_ISSUER, str(settings.data_dir / "issuer")):
        typer.echo(f"notice: issuer changes from {before} to {settings.issuer} ({source})", err=True)
        return
    raise fail(
        str(
            ConfigError(
                "issuer",
                f"the data in {settings.data_dir.resolve()} was served as {before}, and {settings.issuer} "
                "would change it (tokens, sessions and clients name the issuer)",
                f"serve on the same address, or set BASTION_ISSUER={settings.issuer} to move it on purpose",
                source=source,
            )
        )
    )


def _export(settings: Settings, config: Path | None) -> None:
    """Workers rebuild Settings from the environment: pass what the flags decided."""
    os.environ["BASTION_ISSUER"] = settings.issuer
    os.environ["BASTION_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["BASTION_HOST"] = settings.host
    os.environ["BASTION_PORT"] = str(settings.port)
    os.environ["BASTION_BEHIND_PROXY"] = "1" if settings.behind_proxy else "0"
    os.environ["BASTION_MFA"] = settings.mfa
    os.environ["BASTION_MFA_ROLES"] = ",".join(settings.mfa_roles)
    if config is not None:
        os.environ["BASTION_CONFIG"] = str(config.resolve())


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """Several workers share their metrics through a private directory of `prometheus-client`'s
    files (its multiprocess mode), made before they start and removed when the server stops;
    the worker that is scraped sums them all."""
    if workers == 1:
        yield
        return
    directory = tempfile.mkdtemp(prefix="bastion-metrics-")  # 0700, this process's own
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind [env BASTION_HOST; default 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to bind [env BASTION_PORT; default 8000].")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (more than one needs Redis) [default 1].")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM) to serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="TLS private key (PEM).")] = None,
    behind_proxy: Annotated[
        bool | None,
        typer.Option("--behind-proxy", help="A TLS-terminating proxy is in front (trust its forwarded headers)."),
    ] = None,
    mfa: Annotated[
        str | None,
        typer.Option(
            "--mfa",
            help="Who must sign in with a second factor: off, optional (offered), required (everyone) "
            "or roles (holders of --mfa-roles). Default roles.",
            show_default=False,
        ),
    ] = None,
    mfa_roles: Annotated[
        str | None,
        typer.Option(
            "--mfa-roles",
            help="Comma-separated roles that need a second factor under --mfa roles (default admin).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the authorization server (development mode by default: SQLite in the data directory).

    Every setting is checked, the rate-limit policies built and the port tried before anything
    is written; a refusal exits 2 naming the setting, where it came from, and the fix.
    """
    if (tls_cert is None) != (tls_key is None):
        raise fail("--tls-cert and --tls-key go together; give both to serve HTTPS")
    tls = tls_cert is not None
    overrides: dict[str, object] = {
        "host": host,
        "port": port,
        "workers": workers,
        "behind_proxy": behind_proxy,
        "mfa": mfa,
        "mfa_roles": mfa_roles,
    }
    settings = settings_for(data_dir, config, creates_data=True, listening=True, tls=tls, **overrides)
    if settings.password_hashing == "testing":  # noqa: S105 - a profile name, not a password
        # STYLE.md §5: shortcuts that weaken security live in a `testing` profile serve refuses.
        raise fail("password_hashing=testing is for test suites only. Fix: unset BASTION_PASSWORD_HASHING (owasp)")
    if not is_loopback_host(settings.host) and not tls and not settings.behind_proxy:
        raise fail(
            f"--host {settings.host} is not loopback and no TLS is configured. Fix: pass --tls-cert and --tls-key, "
            "or --behind-proxy when a TLS-terminating proxy is in front (RFC 9700 §4.13)"
        )
    if settings.workers > 1 and settings.redis_url is None:
        raise fail(
            f"--workers {settings.workers} needs Redis for the stores the workers must share (rate limits, replay "
            "caches). Fix: set BASTION_REDIS_URL=redis://HOST:6379/0, or run with --workers 1"
        )
    _check_issuer_kept(settings)
    _preflight(settings)
    record_issuer(settings)
    _export(settings, config)
    _banner(settings, data_dir)
    with _metrics_directory(settings.workers):
        _run(settings.host, settings.port, settings.workers, tls_cert, tls_key, settings.shutdown_drain_seconds)


def _banner(settings: Settings, data_dir: Path | None) -> None:
    """What is being served, the policies in force, and a first command that works as printed."""
    mode = "development mode (SQLite, loopback issuer)" if settings.development_mode else "production mode"
    lines = [
        f"Bastion authorization server, {mode}",
        f"  issuer:   {settings.issuer}",
        f"  data:     {settings.data_dir.resolve()}",
        "  rate limits:",
        *(f"    {line}" for line in describe_policies(settings.ratelimit.policies)),
    ]
    shedding = settings.ratelimit.shedding
    if shedding.enabled:
        lines.append(f"  load shedding: limit {shedding.limit}, queue {shedding.queue_size}")
    where = f" --data-dir {shlex.quote(str(data_dir))}" if data_dir is not None else ""
    lines.append(
        f"  first client: bastion clients create{where} --name my-service --grant client_credentials --scope read"
    )
    for line in lines:
        print(line, flush=True)


def _run(host: str, port: int, workers: int, tls_cert: Path | None, tls_key: Path | None, drain_seconds: int) -> None:
    uvicorn.run(
        "bastion.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        # The app reads forwarded headers itself (`server.app`), after the request-id middleware
        # has seen which peer connected; uvicorn must not rewrite the client before that.
        proxy_headers=False,
        server_header=False,
        date_header=True,
        access_log=False,
        log_level="warning",
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        lifespan="on",
        # SIGTERM: stop accepting at once, let requests in flight finish for this long, then
        # cancel what is left (a grant's transaction rolls back whole) and exit.
        timeout_graceful_shutdown=drain_seconds,
    )
