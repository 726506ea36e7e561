"""Starting real `bastion serve` processes for tests (the third level of realism)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bastion.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    data_dir: Path
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `bastion ARGS --data-dir ...` against this server's data (before a `--`, after
        which every argument is positional)."""
        head, rest = (args[: args.index("--")], args[args.index("--") :]) if "--" in args else (args, ())
        return subprocess.run(
            [sys.executable, "-m", "bastion", *head, "--data-dir", str(self.data_dir), *rest],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def create_client(self, *args: str) -> dict[str, Any]:
        result = self.cli("clients", "create", *args, "--json")
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def keep_session_cookie(client: httpx.AsyncClient) -> Callable[[httpx.Response], Awaitable[None]]:
    """A response hook for a client of a live server: plain-http test clients do not send
    `Secure` cookies (Python's cookie policy); carry the session cookie by hand, as a browser on
    loopback does."""

    async def hook(response: httpx.Response) -> None:
        for value in response.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            if name == "__Host-bastion-session":
                client.headers["cookie"] = f"{name}={rest.split(';', 1)[0]}"

    return hook


def server_env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_") or k.startswith("BASTION_TEST")}
    env.update(
        {
            "BASTION_ISSUER": f"http://127.0.0.1:{port}",
            "BASTION_DATABASE_URL": settings.resolved_database_url,
            "BASTION_KEY_ENCRYPTION_KEY": settings.key_encryption_key.reveal() if settings.key_encryption_key else "",
            "BASTION_CLIENT_SECRET_PEPPER": settings.client_secret_pepper.reveal()
            if settings.client_secret_pepper
            else "",
            "BASTION_KEY_PREPUBLICATION": str(settings.key_prepublication),
            "BASTION_CLIENT_CACHE_SECONDS": str(settings.client_cache_seconds),
            "BASTION_KEY_CACHE_SECONDS": str(settings.key_cache_seconds),
            "BASTION_ACCESS_TOKEN_LIFETIME": str(settings.access_token_lifetime),
            # Tests create their own users; the demo's seeded ones (alice, bob...) only on request.
            "BASTION_DEMO": "0",
        }
    )
    if settings.redis_url is not None:
        env["BASTION_REDIS_URL"] = settings.redis_url.reveal()
    env.update(extra)
    return env


def start_server(
    settings: Settings, tmp_path: Path, *, port: int | None = None, args: Sequence[str] = (), **extra_env: str
) -> LiveServer:
    """`bastion serve` on `port` (a free one by default) with the flags in `args`."""
    port = port or free_port()
    data_dir = tmp_path / f"serve-{port}"
    env = server_env(settings, port, **extra_env)
    log = tmp_path / f"serve-{port}.log"
    # The child keeps its own copy of the descriptor; closing ours avoids a ResourceWarning
    # (an error under filterwarnings=error).
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bastion", "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded 2-core CI machine can take a while to start Python
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bastion serve exited {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return LiveServer(url, process, env, data_dir, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    # Reap it: an unreaped child is a ResourceWarning, an error under filterwarnings=error, which
    # hid the real failure (a server that did not start in time) behind an unraisable exception.
    process.wait(10)
    raise RuntimeError(f"bastion serve did not answer on {url}: {log.read_text()}")
