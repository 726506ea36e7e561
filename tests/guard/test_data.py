"""Data in and out: mass assignment, output per role, body limits, security headers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.guard import RBAC, Principal
from bastion.guard.body import BodyLimitMiddleware, json_depth
from bastion.guard.headers import SecurityHeadersMiddleware
from bastion.guard.models import InputModel, OutputModel, RoleViews


class NoteIn(InputModel):
    title: str
    body: str = ""


class NoteOut(OutputModel):
    id: int
    title: str


class NoteAdminOut(NoteOut):
    owner: str


class Stored:
    def __init__(self) -> None:
        self.id, self.title, self.owner, self.internal_notes = 1, "t", "alice", "do not leak"


@pytest.mark.parametrize(
    ("field", "error_type", "message"),
    [
        pytest.param("owner", "read_only", "owner is set by the server and cannot be assigned", id="owner"),
        pytest.param("role", "read_only", "role is set by the server and cannot be assigned", id="role"),
        pytest.param("id", "read_only", "id is set by the server and cannot be assigned", id="id"),
        pytest.param("created_at", "read_only", "created_at is set by the server and cannot be assigned", id="created"),
        pytest.param("colour", "extra_forbidden", "Extra inputs are not permitted", id="unknown"),
    ],
)
def test_mass_assignment_names_the_field(field: str, error_type: str, message: str) -> None:
    """A server-owned or unknown field in a body is refused with the field named."""
    with pytest.raises(ValidationError) as caught:
        NoteIn.model_validate({"title": "t", field: "x"})

    [error] = caught.value.errors()
    assert (error["type"], error["loc"], error["msg"]) == (error_type, (field,), message)


def test_input_model_accepts_declared_fields() -> None:
    """Declared fields bind normally."""
    assert NoteIn.model_validate({"title": "t", "body": "b"}).body == "b"


def test_output_models_per_role_never_leak_undeclared_fields() -> None:
    """Each role sees its declared fields only; a field no model declares never leaves."""
    views = RoleViews(NoteOut, [("admin", NoteAdminOut)], rbac=RBAC.from_mapping({}))
    alice = Principal("user", "alice", frozenset())
    carol = Principal("user", "carol", frozenset(), frozenset({"admin"}))

    assert views.dump(alice, Stored()) == {"id": 1, "title": "t"}
    assert views.dump(carol, Stored()) == {"id": 1, "title": "t", "owner": "alice"}
    assert views.dump_all(alice, [Stored()]) == [{"id": 1, "title": "t"}]


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        pytest.param(b"1", 0, id="scalar"),
        pytest.param(b'{"a": [1, {"b": []}]}', 4, id="nested"),
        pytest.param(b'{"a": "[[[[{{{{"}', 1, id="brackets-in-string"),
        pytest.param(b'["\\"[[["]', 1, id="escaped-quote"),
    ],
)
def test_json_depth(text: bytes, depth: int) -> None:
    """Nesting depth ignores brackets inside strings."""
    assert json_depth(text) == depth
    json.loads(text)


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


APP = Starlette(
    routes=[Route("/echo", echo, methods=["POST"])],
    middleware=[
        Middleware(SecurityHeadersMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=1000, max_depth=5),
    ],
)


async def chunks(*parts: bytes) -> Any:
    for part in parts:
        yield part


async def post(**kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://api") as c:
        return await c.post("/echo", **kwargs)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "status", "body"),
    [
        pytest.param({"content": b"x" * 1000}, 200, {"size": 1000}, id="at-limit"),
        pytest.param(
            {"content": b"x" * 1001},
            413,
            {"error": "request_too_large", "error_description": "The request body exceeds 1000 bytes."},
            id="over-limit",
        ),
        pytest.param(
            {"content": chunks(b"x" * 600, b"x" * 600)},
            413,
            {"error": "request_too_large", "error_description": "The request body exceeds 1000 bytes."},
            id="chunked-over-limit",
        ),
        pytest.param({"json": [[[[[1]]]]]}, 200, {"size": 11}, id="depth-at-limit"),
        pytest.param(
            {"content": b"[[[[[[1]]]]]]"},
            422,
            {"error": "invalid_request", "error_description": "The JSON body is nested deeper than 5 levels."},
            id="too-deep-without-content-type",
        ),
        pytest.param(
            {"content": b"[[[[[[1]]]]]]", "headers": {"content-type": "text/plain"}},
            200,
            {"size": 13},
            id="deep-brackets-in-text",
        ),
        pytest.param(
            {"json": [[[[[[1]]]]]]},
            422,
            {"error": "invalid_request", "error_description": "The JSON body is nested deeper than 5 levels."},
            id="too-deep",
        ),
    ],
)
async def test_body_limits(kwargs: dict[str, Any], status: int, body: dict[str, Any]) -> None:
    """Bodies over the size limit get 413 and JSON nested too deep gets 422."""
    response = await post(**kwargs)

    assert (response.status_code, response.json()) == (status, body)


@pytest.mark.anyio
async def test_security_headers_on_every_response() -> None:
    """Every response, refusals included, carries the security headers."""
    for response in (await post(content=b"{}"), await post(content=b"x" * 2000)):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers


@pytest.mark.anyio
async def test_hsts_over_https() -> None:
    """HSTS is sent when the request came over https."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="https://api") as c:
        response = await c.post("/echo", content=b"{}")

    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "description"),
    [
        pytest.param(
            [(b"content-length", b"2"), (b"content-length", b"2")], "Send one Content-Length header.", id="cl"
        ),
        pytest.param(
            [(b"transfer-encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
            "Send one Transfer-Encoding header.",
            id="te",
        ),
        pytest.param(
            [(b"Content-Type", b"application/json"), (b"content-type", b"text/plain")],
            "Send one Content-Type header.",
            id="ct-mixed-case",
        ),
    ],
)
async def test_a_header_the_body_limit_reads_comes_once(headers: list[tuple[bytes, bytes]], description: str) -> None:
    """Each header the body limit reads (and the framework reads again) is refused with 400 when
    it comes twice, whatever the case of its name, as an ASGI server may hand it over."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/echo", "headers": headers, "query_string": b""}
    await BodyLimitMiddleware(APP, max_bytes=1000, max_depth=5)(scope, receive, send)

    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {"error": "invalid_request", "error_description": description}
