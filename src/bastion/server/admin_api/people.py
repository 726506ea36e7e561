"""`/admin/users`, their sessions and grants, and `/admin/roles`, through the operations layer
the CLI uses (`server.admin_people`)."""

from __future__ import annotations

from typing import Any

from bastion.identity import NewUser, users
from bastion.server import admin_people
from bastion.server.admin_api._http import Call, Operation

_ROLES = {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 50}
NEW_USER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "maxLength": 150},
        "password": {"type": "string", "maxLength": 1024, "writeOnly": True},
        "email": {"type": "string", "maxLength": 320},
        "email_verified": {"type": "boolean"},
        "display_name": {"type": "string", "maxLength": 200},
        "roles": _ROLES,
    },
}
USER_CHANGES: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"roles": _ROLES, "enabled": {"type": "boolean"}},
}


async def list_users(call: Call) -> Any:
    return [users.describe(u) for u in await users.list_users(call.ctx.database)]


async def show_user(call: Call) -> Any:
    return users.describe(await admin_people.require(call.ctx.database, call.path["user"]))


async def create_user(call: Call) -> Any:
    body = call.body
    new = NewUser(
        username=body["username"],
        email=body.get("email", ""),
        email_verified=body.get("email_verified", False),
        display_name=body.get("display_name", ""),
        roles=tuple(body.get("roles", ())),
    )
    people = call.ctx.people
    return await admin_people.create_user(call.ctx.database, people.passwords, new, body["password"], actor=call.actor)


async def update_user(call: Call) -> Any:
    database, name = call.ctx.database, call.path["user"]
    result = users.describe(await admin_people.require(database, name))
    if "roles" in call.body:
        result = await admin_people.set_roles(database, name, tuple(call.body["roles"]), actor=call.actor)
    if "enabled" in call.body:
        result = await admin_people.set_enabled(database, name, call.body["enabled"], actor=call.actor)
    return result


async def delete_user(call: Call) -> Any:
    return await admin_people.delete_user(call.ctx.database, call.ctx.denylist, call.path["user"], actor=call.actor)


async def list_sessions(call: Call) -> Any:
    return await admin_people.list_sessions(call.ctx.database, call.path["user"])


async def revoke_session(call: Call) -> Any:
    return await admin_people.revoke_session(call.ctx.database, call.path["user"], call.path["sid"], actor=call.actor)


async def list_grants(call: Call) -> Any:
    return await admin_people.list_grants(call.ctx.database, call.path["user"])


async def revoke_grant(call: Call) -> Any:
    return await admin_people.revoke_grant(
        call.ctx.database, call.ctx.denylist, call.path["user"], call.path["family"], actor=call.actor
    )


async def list_roles(call: Call) -> Any:
    return await admin_people.list_roles(call.ctx.database)


ONE = "/admin/users/{user}"
OPERATIONS = (
    Operation("GET", "/admin/users", list_users, "Every user", tag="users"),
    Operation("POST", "/admin/users", create_user, "Create a user", NEW_USER, status=201, tag="users"),
    Operation("GET", ONE, show_user, "One user, by username or sub", tag="users"),
    Operation("PATCH", ONE, update_user, "Change a user's roles or enable/disable them", USER_CHANGES, tag="users"),
    Operation("DELETE", ONE, delete_user, "Delete a user (grants revoked)", tag="users"),
    Operation("GET", ONE + "/sessions", list_sessions, "The user's browser sessions", tag="sessions"),
    Operation("DELETE", ONE + "/sessions/{sid}", revoke_session, "End one session", tag="sessions"),
    Operation("GET", ONE + "/grants", list_grants, "The user's grants (refresh-token families)", tag="grants"),
    Operation("DELETE", ONE + "/grants/{family}", revoke_grant, "Revoke one grant", tag="grants"),
    Operation("GET", "/admin/roles", list_roles, "The roles in use, with Bastion's own", tag="users"),
)
