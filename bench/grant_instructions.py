"""Instructions per client_credentials grant, counted by valgrind's callgrind: a figure that does
not move with whatever else the machine is doing, for telling whether a change made the token
endpoint cheaper or dearer (wall-clock rates on a shared machine drift by 10-30%).

    python3 dev.py run python bench/grant_instructions.py [--grants 800] [--rounds 2]

The grants run in process (the ASGI app called directly, development mode, SQLite, ES256), after
200 unmeasured ones. A data directory is prepared once (its signing keys made: RSA key generation
varies a lot in cost), then each round runs the same program twice under callgrind on a copy of
it, with no grants and with `--grants`, and the difference divided by `--grants` is the figure.
Needs valgrind on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

WARMUP = 200


class InProcessGrants:
    """The app on a data directory, with a client_credentials client, called directly per grant
    (also the token bench's `--fast-path` driver)."""

    async def open(self, data_dir: str) -> None:
        from bastion.config import load_settings
        from bastion.keys.startup import client_secret_pepper
        from bastion.server import admin, create_app, open_context
        from bastion.server.clients import SecretHasher

        settings = load_settings(environ={}, overrides={"data_dir": data_dir, "log_level": "warning"})
        self.ctx = await open_context(settings)
        new = admin.NewClient(name="bench", grants=("client_credentials",), scope=("read",))
        client = await admin.create_client(self.ctx.database, SecretHasher(client_secret_pepper(settings)), new)
        self.app = create_app(settings, self.ctx)
        self.body = b"grant_type=client_credentials&scope=read"
        basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode())
        self.headers = [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"authorization", b"Basic " + basic),
            (b"content-length", str(len(self.body)).encode()),
        ]
        self.statuses: set[int] = set()

    async def _receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.statuses.add(message["status"])

    async def grant(self, root_path: str = "") -> None:
        """One POST /token; under a `root_path` the fast path leaves it to the router."""
        scope = {"type": "http", "method": "POST", "path": root_path + "/token", "root_path": root_path,
                 "query_string": b"", "headers": self.headers, "client": ("127.0.0.1", 5000), "scheme": "http",
                 "state": {}}
        await self.app(scope, self._receive, self._send)

    async def close(self) -> None:
        await self.ctx.close()
        if self.statuses != {200}:
            raise RuntimeError(f"not every grant succeeded: {self.statuses}")


async def grants(data_dir: str, count: int) -> None:
    """`count` grants (after the warm-up) against the app on `data_dir`."""
    driver = InProcessGrants()
    await driver.open(data_dir)
    for _ in range(WARMUP + count):
        await driver.grant()
    await driver.close()


def collected(seed: Path, count: int) -> int:
    """Instructions callgrind counts for one run of `count` grants on a copy of `seed`."""
    with tempfile.TemporaryDirectory(prefix="bastion-instr-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(seed, data)
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable, __file__,
             "--run", str(data), str(count)],
            capture_output=True, text=True, check=True,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError("callgrind printed no count:\n" + done.stderr[-2000:])
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--run", nargs=2, metavar=("DATA_DIR", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        asyncio.run(grants(args.run[0], int(args.run[1])))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH (Debian package valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bastion-instr-seed-") as tmp:
        seed = Path(tmp) / "data"
        asyncio.run(grants(str(seed), 0))
        per_grant = [(collected(seed, args.grants) - collected(seed, 0)) / args.grants for _ in range(args.rounds)]
    print(f"instructions per client_credentials grant, in process: {statistics.median(per_grant):,.0f} "
          f"(rounds: {', '.join(f'{p:,.0f}' for p in per_grant)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
