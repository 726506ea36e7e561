"""`/admin/clients`: list, read, register, change (scopes, redirect URIs...), delete, rotate the
secret, through the operations layer the CLI uses (`server.admin`)."""

from __future__ import annotations

from typing import Any

from bastion.server import admin
from bastion.server.admin_api._http import Call, Operation

_URIS = {"type": "array", "items": {"type": "string", "maxLength": 2000}, "maxItems": 20}
_WORDS = {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 50}
_CHANGEABLE: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 200},
    "scope": _WORDS,
    "audiences": _URIS,
    "redirect_uris": _URIS,
    "post_logout_redirect_uris": _URIS,
    "access_token_lifetime_minutes": {"type": "integer", "minimum": 1, "maximum": 60},
    "require_mfa": {"type": "boolean"},
    "introspect": {"type": "boolean"},
    "enabled": {"type": "boolean"},
}
NEW_CLIENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "grant_types"],
    "properties": {
        **{k: v for k, v in _CHANGEABLE.items() if k != "enabled"},
        "grant_types": {"type": "array", "items": {"type": "string", "enum": list(admin.GRANT_TYPES)}, "maxItems": 4},
        "token_endpoint_auth_method": {"type": "string", "enum": list(admin.AUTH_METHODS)},
    },
}
CLIENT_CHANGES: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": _CHANGEABLE}
ROTATION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"overlap_seconds": {"type": "integer", "minimum": 0, "maximum": 30 * 86400}},
}


async def list_clients(call: Call) -> Any:
    return await admin.list_clients(call.ctx.database)


async def show_client(call: Call) -> Any:
    return await admin.show_client(call.ctx.database, call.path["client_id"])


async def create_client(call: Call) -> Any:
    body = call.body
    new = admin.NewClient(
        name=body["name"],
        grants=tuple(body["grant_types"]),
        scope=tuple(body.get("scope", ())),
        audiences=tuple(body.get("audiences", ())),
        auth_method=body.get("token_endpoint_auth_method", "client_secret_basic"),
        token_lifetime=body.get("access_token_lifetime_minutes"),
        introspect=body.get("introspect", False),
        redirect_uris=tuple(body.get("redirect_uris", ())),
        post_logout_redirect_uris=tuple(body.get("post_logout_redirect_uris", ())),
        require_mfa=body.get("require_mfa", False),
    )
    return await admin.create_client(call.ctx.database, call.ctx.hasher, new, actor=call.actor)


async def update_client(call: Call) -> Any:
    body = call.body
    lists = {k: tuple(v) for k, v in body.items() if isinstance(v, list)}
    changes = admin.ClientChanges(
        name=body.get("name"),
        scope=lists.get("scope"),
        audiences=lists.get("audiences"),
        redirect_uris=lists.get("redirect_uris"),
        post_logout_redirect_uris=lists.get("post_logout_redirect_uris"),
        token_lifetime=body.get("access_token_lifetime_minutes"),
        require_mfa=body.get("require_mfa"),
        introspect=body.get("introspect"),
        enabled=body.get("enabled"),
    )
    return await admin.update_client(call.ctx.database, call.path["client_id"], changes, actor=call.actor)


async def delete_client(call: Call) -> Any:
    return await admin.delete_client(call.ctx.database, call.path["client_id"], actor=call.actor)


async def rotate_secret(call: Call) -> Any:
    overlap = call.body.get("overlap_seconds", call.ctx.settings.client_secret_rotation_overlap)
    return await admin.rotate_secret(
        call.ctx.database, call.ctx.hasher, call.path["client_id"], overlap, actor=call.actor
    )


ONE = "/admin/clients/{client_id}"
OPERATIONS = (
    Operation("GET", "/admin/clients", list_clients, "Every registered client", tag="clients"),
    Operation("POST", "/admin/clients", create_client, "Register a client", NEW_CLIENT, status=201, tag="clients"),
    Operation("GET", ONE, show_client, "One client", tag="clients"),
    Operation("PATCH", ONE, update_client, "Change a client's settings", CLIENT_CHANGES, tag="clients"),
    Operation("DELETE", ONE, delete_client, "Delete a client", tag="clients"),
    Operation("POST", ONE + "/secret", rotate_secret, "Rotate the client's secret", ROTATION, tag="clients"),
)
