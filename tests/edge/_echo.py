"""The upstream of the edge's proxy tests: answers every request with what it received.

    python tests/edge/_echo.py PORT

A Starlette app under uvicorn: the method, the raw path and query exactly as they arrived, the
decoded path, every header (in order, repeated ones repeated) and the body's length, as JSON. It
answers with `Server` and `X-Powered-By` of its own, which the proxies must not let through.
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "path": request.scope["path"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
            "body_length": len(body),
        },
        headers={"Server": "EchoUpstream/1.0 (Python)", "X-Powered-By": "Starlette/echo"},
    )


app = Starlette(routes=[Route("/{path:path}", echo, methods=METHODS)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
                server_header=False, date_header=False, proxy_headers=False)
