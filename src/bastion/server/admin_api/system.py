"""`/admin/keys` (list, rotate) and `/admin/audit` (a paged query of the audit trail)."""

from __future__ import annotations

from typing import Any

from bastion.keys import lifecycle
from bastion.server import admin_audit
from bastion.server.admin_api._http import Call, Operation

ROTATION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["alg"],
    "properties": {"alg": {"type": "string", "enum": list(lifecycle.SIGNING_ALGORITHMS)}},
}
AUDIT_QUERY: dict[str, dict[str, Any]] = {
    "after": {"type": "integer", "minimum": 0, "maximum": 2**62},
    "limit": {"type": "integer", "minimum": 1, "maximum": admin_audit.MAX_PAGE},
    "event": {"type": "string", "maxLength": 64},
}


async def list_keys(call: Call) -> Any:
    return await lifecycle.describe_all(call.ctx.database, call.ctx.settings.clock_leeway)


async def rotate_key(call: Call) -> Any:
    ctx = call.ctx
    rotated = await lifecycle.rotate(
        ctx.database, ctx.people.encryptor, call.body["alg"], ctx.settings.key_prepublication
    )
    call.actor.audit("admin_key_rotated", kid=rotated["kid"], alg=rotated["alg"])
    return rotated


async def query_audit(call: Call) -> Any:
    return await admin_audit.page(
        call.ctx.database,
        after=call.query.get("after", 0),
        limit=call.query.get("limit", 50),
        event=call.query.get("event"),
    )


OPERATIONS = (
    Operation("GET", "/admin/keys", list_keys, "Every signing key with its state", tag="keys"),
    Operation("POST", "/admin/keys", rotate_key, "Add a signing key (rotation)", ROTATION, status=201, tag="keys"),
    Operation("GET", "/admin/audit", query_audit, "A page of the audit trail", query=AUDIT_QUERY, tag="audit"),
)
