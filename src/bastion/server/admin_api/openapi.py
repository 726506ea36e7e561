"""The admin API's OpenAPI 3.1 document, built from the operations themselves (their paths,
bodies and query parameters), so it cannot drift from what is served."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bastion.server.admin_api._auth import ADMIN_SCOPE
from bastion.server.admin_api._http import Operation

_PARAMETER = re.compile(r"\{([a-z_]+)\}")
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error"],
}
_REFUSALS = {
    "400": "Bad input: a specific error_description",
    "401": "No valid token (invalid_token), or no second factor (insufficient_user_authentication)",
    "403": "No admin scope (insufficient_scope) or no admin role (forbidden)",
    "404": "Unknown client, user, session, grant or API key",
    "409": "Duplicate (a taken username)",
}


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}}
        for name in _PARAMETER.findall(op.path)
    ]
    parameters += [{"name": name, "in": "query", "required": False, "schema": s} for name, s in op.query.items()]
    responses: dict[str, Any] = {str(op.status): {"description": "Done", "content": {"application/json": {}}}}
    for status, text in _REFUSALS.items():
        responses[status] = {"description": text, "content": {"application/json": {"schema": _ERROR}}}
    described: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method.lower()}{re.sub(r'[^A-Za-z]+', '_', op.path)}".rstrip("_"),
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
    }
    if op.body is not None:
        described["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    return described


def document(operations: Sequence[Operation], issuer: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`, served by the server at `issuer`."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bastion admin API",
            "version": "1",
            "description": (
                f"Needs one of this server's access tokens with the {ADMIN_SCOPE} scope, the admin role "
                "(ask for the roles scope) and a sign-in with a second factor."
            ),
        },
        "servers": [{"url": issuer}],
        "security": [{"bastion": [ADMIN_SCOPE, "roles"]}],
        "components": {
            "securitySchemes": {
                "bastion": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": f"{issuer}/authorize",
                            "tokenUrl": f"{issuer}/token",
                            "scopes": {ADMIN_SCOPE: "Administer Bastion", "roles": "Your roles in the token"},
                        }
                    },
                }
            }
        },
        "paths": paths,
    }
