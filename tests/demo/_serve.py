"""Run the demo API in its own uvicorn process for the attack suite.

    python tests/demo/_serve.py PORT

Reads DEMO_DISCOVERY_URL, DEMO_AUDIENCE, DEMO_APIKEYS (a JSON key file) and DEMO_AUDIT (a
JSON-lines audit file) from the environment; seeds the development data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

from bastion.demo import create_app
from bastion.guard import IssuerConfig
from bastion.guard.apikeys import ApiKeyManager, JsonFileApiKeyStore
from bastion.guard.audit import AuditLog, JsonLinesSink


def main() -> None:
    app = create_app(
        [IssuerConfig(os.environ["DEMO_DISCOVERY_URL"], os.environ["DEMO_AUDIENCE"])],
        seed=True,
        api_keys=ApiKeyManager(JsonFileApiKeyStore(Path(os.environ["DEMO_APIKEYS"]))),
        audit=AuditLog([JsonLinesSink(Path(os.environ["DEMO_AUDIT"]))]),
        # The suite talks to the demo from loopback as a proxy would: its X-Request-ID is kept.
        trusted_proxies=["127.0.0.1"],
    )
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
