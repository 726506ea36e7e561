"""The landing page (`/`): what this server is, with links to what a person or a developer
arriving here may want: discovery, the device-code page and, when it is mounted, the example API.

Only links to this server: the pages never name another origin.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from bastion.server.pages import render

DEMO_PATH = "/demo"


def _demo_mounted(request: Request) -> bool:
    return any(isinstance(route, Mount) and route.path == DEMO_PATH for route in request.app.routes)


async def landing_page(request: Request) -> Response:
    return render("landing.html", title="Sign-in service", demo=_demo_mounted(request))


__all__ = ["landing_page"]
