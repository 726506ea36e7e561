"""bastion.demo: an example multi-tenant notes API that uses every control of bastion.guard.

It is what a third party would write: it imports only `bastion.guard` (and `bastion.ratelimit`)
from Bastion. `create_app(issuers, ...)` returns the FastAPI application; `bastion serve`
mounts it at /demo in development mode, with its OpenAPI document at /demo/openapi.json and
interactive docs built from it at /demo/docs.
"""

from bastion.demo._app import ROLES, SCOPES, create_app, scopes_for
from bastion.demo._data import DEMO_USERS, DemoUser, Note, NoteStore

__all__ = ["DEMO_USERS", "ROLES", "SCOPES", "DemoUser", "Note", "NoteStore", "create_app", "scopes_for"]
