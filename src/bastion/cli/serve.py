"""`bastion serve`: start the authorization server. Scripts rely on these flags."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from bastion.cli._common import fail, run, settings_for
from bastion.cli._options import ConfigOption, DataDirOption
from bastion.config import Settings, is_loopback_host, record_issuer
from bastion.server import open_context


def _preflight(settings: Settings) -> None:
    """Open everything once before binding, so every refusal is a clear message and exit 2."""

    async def go() -> None:
        ctx = await open_context(settings)
        await ctx.close()

    run(go())


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
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8000,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (more than one needs Redis).")] = 1,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM) to serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="TLS private key (PEM).")] = None,
    behind_proxy: Annotated[
        bool, typer.Option("--behind-proxy", help="A TLS-terminating proxy is in front (trust its forwarded headers).")
    ] = False,
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
    """Start the authorization server (development mode by default: SQLite in the data directory)."""
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
    if tls and not os.environ.get("BASTION_ISSUER"):
        shown = f"[{host}]" if ":" in host else host
        overrides["issuer"] = f"https://{shown}:{port}"
    settings = settings_for(data_dir, config, **overrides)
    if settings.password_hashing == "testing":  # noqa: S105 - a profile name, not a password
        # STYLE.md §5: shortcuts that weaken security live in a `testing` profile serve refuses.
        raise fail("password_hashing=testing is for test suites only. Fix: unset BASTION_PASSWORD_HASHING (owasp)")
    if not is_loopback_host(host) and not tls and not behind_proxy:
        raise fail(
            f"--host {host} is not loopback and no TLS is configured. Fix: pass --tls-cert and --tls-key, "
            "or --behind-proxy when a TLS-terminating proxy is in front (RFC 9700 §4.13)"
        )
    if workers > 1 and settings.redis_url is None:
        raise fail(
            f"--workers {workers} needs Redis for the stores the workers must share (rate limits, replay caches). "
            "Fix: set BASTION_REDIS_URL=redis://HOST:6379/0, or run with --workers 1"
        )
    _preflight(settings)
    record_issuer(settings)
    _export(settings, config)
    mode = "development mode (SQLite, loopback issuer)" if settings.development_mode else "production mode"
    print(f"Bastion authorization server, {mode}", flush=True)
    print(f"  issuer:   {settings.issuer}", flush=True)
    print(f"  data:     {settings.data_dir.resolve()}", flush=True)
    print(
        "  first client: bastion clients create --name my-service --grant client_credentials --scope 'read' --json",
        flush=True,
    )
    with _metrics_directory(workers):
        _run(host, port, workers, tls_cert, tls_key, settings.shutdown_drain_seconds)


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
