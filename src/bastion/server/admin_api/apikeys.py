"""`/admin/apikeys`: list (never a key or its hash), create (the key answered once), rotate
(with an overlap), revoke, through the operations layer `bastion apikeys` uses
(`server.admin_apikeys`)."""

from __future__ import annotations

from typing import Any

from bastion.server import admin_apikeys
from bastion.server.admin_api._http import Call, Operation

NEW_KEY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["owner"],
    "properties": {
        "owner": {"type": "string", "maxLength": admin_apikeys.MAX_OWNER},
        "scopes": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 50},
        "expires_in": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    },
}
ROTATION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"overlap_seconds": {"type": "integer", "minimum": 0, "maximum": admin_apikeys.MAX_OVERLAP}},
}


async def list_keys(call: Call) -> Any:
    return await admin_apikeys.list_keys(call.ctx.database)


async def create_key(call: Call) -> Any:
    body = call.body
    return await admin_apikeys.create_key(
        call.ctx.database, body["owner"], body.get("scopes", ()), body.get("expires_in"), actor=call.actor
    )


async def rotate_key(call: Call) -> Any:
    overlap = call.body.get("overlap_seconds", admin_apikeys.DEFAULT_OVERLAP)
    return await admin_apikeys.rotate_key(call.ctx.database, call.path["key_id"], overlap, actor=call.actor)


async def revoke_key(call: Call) -> Any:
    return await admin_apikeys.revoke_key(call.ctx.database, call.path["key_id"], actor=call.actor)


ONE = "/admin/apikeys/{key_id}"
OPERATIONS = (
    Operation("GET", "/admin/apikeys", list_keys, "Every API key (never a key or its hash)", tag="apikeys"),
    Operation("POST", "/admin/apikeys", create_key, "Create a key, shown once", NEW_KEY, status=201, tag="apikeys"),
    Operation("POST", ONE + "/rotation", rotate_key, "A successor key (overlap)", ROTATION, tag="apikeys"),
    Operation("DELETE", ONE, revoke_key, "Revoke an API key now", tag="apikeys"),
)
