"""`uvicorn bastion.asgi:app --factory`: the served app, built from `BASTION_*` settings.

`bastion serve` runs it and passes its resolved settings to worker processes through the
environment. Here, not in the server, the example API joins the server in development mode:
mounted at /demo and started (its people seeded) once the server's context is open.

Run by hand, give uvicorn `--no-proxy-headers`: with `behind_proxy` the app reads forwarded
headers itself, after deciding whether the connecting peer may name the request.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from bastion.config import load_settings
from bastion.devdemo import DemoMount, build_demo
from bastion.server import create_app
from bastion.server.context import ServerContext


def app() -> Starlette:
    settings = load_settings()
    if not (settings.development_mode and settings.demo):
        return create_app(settings)
    demo = DemoMount()

    async def start_demo(ctx: ServerContext) -> None:
        demo.app = await build_demo(settings, ctx)

    return create_app(settings, extra_routes=[Mount("/demo", app=demo)], on_startup=start_demo)
