"""`uvicorn bastion.server.asgi:app --factory`: the app built from `BASTION_*` settings.

`bastion serve` passes its resolved settings to worker processes through the environment.
"""

from __future__ import annotations

from starlette.applications import Starlette

from bastion.config import load_settings
from bastion.server.app import create_app


def app() -> Starlette:
    return create_app(load_settings())
