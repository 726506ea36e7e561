"""The admin API's one request pipeline: authorize, check the input against the operation's own
schema (the one the OpenAPI document publishes), act through the shared operations layer, answer.

Every string that reaches the database is checked here first (printable, UTF-8, bounded), so a
hostile path, query or body gets a specific 400, never a 5xx from the driver.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.identity import UserError, WeakPassword
from bastion.keys.lifecycle import KeyLifecycleError
from bastion.protocol.errors import OAuthError
from bastion.server.admin import Actor, AdminError, Conflict, UnknownObject
from bastion.server.admin_api._auth import authorize, refusal
from bastion.server.context import ServerContext
from bastion.server.responses import NO_STORE, json_response, read_body

MAX_STRING = 2000


class BadInput(AdminError):
    """A request whose path, query or body does not fit the operation's schema."""


@dataclass(frozen=True)
class Call:
    """One authorized admin request: who, the path and query parameters, and the JSON body."""

    ctx: ServerContext
    actor: Actor
    path: dict[str, str]
    query: dict[str, Any]
    body: dict[str, Any]


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    """An admin route and its OpenAPI description, in one place."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: dict[str, Any] | None = None  # JSON Schema of the request body
    query: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> schema
    status: int = 200
    tag: str = "admin"


def _check_string(where: str, value: str, schema: dict[str, Any]) -> str:
    if not value.isprintable() or len(value) > schema.get("maxLength", MAX_STRING):
        raise BadInput(f"{where}: printable text of at most {schema.get('maxLength', MAX_STRING)} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{where}: not valid Unicode text") from None
    if "enum" in schema and value not in schema["enum"]:
        raise BadInput(f"{where}: one of {', '.join(schema['enum'])}")
    return value


def check_value(where: str, value: Any, schema: dict[str, Any]) -> Any:
    """`value` as `schema` (the subset of JSON Schema the admin API uses) allows it, or BadInput."""
    kind = schema.get("type")
    if kind == "string" and isinstance(value, str):
        return _check_string(where, value, schema)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        low, high = schema.get("minimum", 0), schema.get("maximum", 2**31 - 1)
        if not low <= value <= high:
            raise BadInput(f"{where}: an integer from {low} to {high}")
        return value
    if kind == "array" and isinstance(value, list) and len(value) <= schema.get("maxItems", 100):
        return [check_value(f"{where}[{i}]", item, schema["items"]) for i, item in enumerate(value)]
    if kind == "object" and isinstance(value, dict):
        return _check_object(where, value, schema)
    raise BadInput(f"{where}: expected {kind}")


def _check_object(where: str, value: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    unknown = sorted(set(value) - set(properties))
    if unknown:
        raise BadInput(f"{where}: unknown field {unknown[0]!r}; known: {', '.join(properties)}")
    missing = [name for name in schema.get("required", ()) if name not in value]
    if missing:
        raise BadInput(f"{where}: missing field {missing[0]!r}")
    return {name: check_value(f"{where}.{name}", item, properties[name]) for name, item in value.items()}


async def _body(request: Request, schema: dict[str, Any] | None) -> dict[str, Any]:
    if schema is None:
        return {}
    raw = await read_body(request)
    try:
        parsed = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise BadInput("the body must be a JSON object") from None
    return _check_object("body", parsed, schema) if isinstance(parsed, dict) else check_value("body", parsed, schema)


def _query(request: Request, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    given = dict(request.query_params)
    unknown = sorted(set(given) - set(schemas))
    if unknown:
        raise BadInput(f"unknown query parameter {unknown[0]!r}")
    checked: dict[str, Any] = {}
    for name, value in given.items():
        schema = schemas[name]
        if schema.get("type") == "integer":
            if not value.isdigit() or len(value) > 12:
                raise BadInput(f"{name}: an integer")
            checked[name] = check_value(name, int(value), schema)
        else:
            checked[name] = check_value(name, value, schema)
    return checked


_STATUS = ((UnknownObject, 404, "not_found"), (Conflict, 409, "conflict"))


def _failure(error: Exception) -> Response:
    for kind, status, code in _STATUS:
        if isinstance(error, kind):
            return json_response({"error": code, "error_description": str(error)}, status, NO_STORE)
    return json_response({"error": "invalid_request", "error_description": str(error)}, 400, NO_STORE)


def route(operation: Operation) -> Route:
    """The Starlette route of an operation: the pipeline above around its handler."""

    async def endpoint(request: Request) -> Response:
        ctx: ServerContext = request.app.state.ctx
        try:
            actor = await authorize(ctx, request)
        except OAuthError as error:
            return refusal(ctx, error)
        try:
            path = {k: _check_string(k, v, {}) for k, v in request.path_params.items()}
            call = Call(ctx, actor, path, _query(request, operation.query), await _body(request, operation.body))
            result = await operation.handler(call)
        except (AdminError, UserError, WeakPassword, KeyLifecycleError) as error:
            return _failure(error)
        return json_response(result, operation.status, NO_STORE)

    return Route(operation.path, endpoint, methods=[operation.method])
