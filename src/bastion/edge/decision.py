"""The decision service's app (placeholder until the decision pipeline lands: refuses everything)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.edge.policy import Policy


def build_app(policy: Policy) -> Starlette:
    """A Starlette app answering `/decide` for `policy`."""

    async def decide(request: Request) -> JSONResponse:
        return JSONResponse({"error": "temporarily_unavailable", "error_description": "not ready"},
                            status_code=503, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/decide", decide, methods=["GET", "HEAD", "POST", "PUT", "PATCH",
                                                                "DELETE", "OPTIONS"])])
