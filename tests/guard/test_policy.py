"""The policy core alone: scopes AND roles, object rules, list filtering."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bastion.guard import (
    RBAC,
    Forbidden,
    InsufficientScope,
    NotFound,
    ObjectPolicy,
    Principal,
    authorize,
    has_permission,
    is_owner,
    require_scopes,
    same_tenant,
)
from bastion.guard.policy import all_of, any_of

RBAC_ = RBAC.from_mapping({"admin": ["notes:admin"], "member": ["notes:read"]})
TENANTS = {"alice": "acme", "bob": "acme", "carol": "acme", "mallory": "evil"}


@dataclass
class Note:
    owner: str
    tenant: str


def user(sub: str, *, scopes: str = "notes:read notes:write", roles: tuple[str, ...] = ()) -> Principal:
    return Principal("user", sub, frozenset(scopes.split()), frozenset(roles))


POLICY = ObjectPolicy(
    {
        "read": all_of(
            same_tenant(lambda p: TENANTS.get(p.subject)),
            any_of(is_owner(), has_permission(RBAC_, "notes:admin")),
        ),
        "update": all_of(same_tenant(lambda p: TENANTS.get(p.subject)), is_owner()),
        "delete": all_of(
            same_tenant(lambda p: TENANTS.get(p.subject)),
            any_of(is_owner(), has_permission(RBAC_, "notes:admin")),
        ),
    }
)


@pytest.mark.parametrize(
    ("principal", "requirement", "error"),
    [
        pytest.param(user("a", scopes="x"), require_scopes("notes:read"), InsufficientScope, id="no-scope"),
        pytest.param(user("a"), require_scopes("notes:read", permissions=["notes:admin"]), Forbidden, id="no-role"),
        pytest.param(
            user("a", scopes="notes:read", roles=("admin",)),
            require_scopes("notes:admin", permissions=["notes:admin"]),
            InsufficientScope,
            id="role-without-scope",
        ),
        pytest.param(
            Principal("api_key", "sys", frozenset({"notes:read"}), api_key_id="k"),
            require_scopes("notes:read", kinds=["user"]),
            Forbidden,
            id="api-key-as-user",
        ),
    ],
)
def test_authorize_refuses(principal: Principal, requirement: object, error: type[Exception]) -> None:
    """Effective permission is scopes AND role entitlements AND caller kind."""
    with pytest.raises(error):
        authorize(principal, requirement, RBAC_)  # type: ignore[arg-type]


def test_authorize_allows_scope_and_role() -> None:
    """Scope and role together allow the admin operation."""
    admin = user("carol", scopes="notes:admin", roles=("admin",))
    authorize(admin, require_scopes("notes:admin", permissions=["notes:admin"]), RBAC_)


def test_permission_without_rbac_is_denied() -> None:
    """A permission requirement with no RBAC configured denies (deny by default)."""
    with pytest.raises(Forbidden):
        authorize(user("a"), require_scopes(permissions=["notes:read"]), None)


def test_rbac_lookup_adds_roles() -> None:
    """The application's own role lookup adds to the token's roles claim."""
    rbac = RBAC.from_mapping({"admin": ["x"]}, lookup=lambda p: ["admin"] if p.subject == "carol" else [])

    assert rbac.permissions_of(user("carol")) == frozenset({"x"})
    assert rbac.permissions_of(user("alice")) == frozenset()


@pytest.mark.parametrize(
    ("principal", "action", "allowed"),
    [
        pytest.param(user("alice"), "read", True, id="owner-reads"),
        pytest.param(user("alice"), "update", True, id="owner-updates"),
        pytest.param(user("bob"), "read", False, id="other-user-reads"),
        pytest.param(user("bob"), "delete", False, id="other-user-deletes"),
        pytest.param(user("carol", roles=("admin",)), "read", True, id="admin-reads"),
        pytest.param(user("carol", roles=("admin",)), "update", False, id="admin-cannot-edit"),
        pytest.param(user("mallory", roles=("admin",)), "read", False, id="other-tenant-admin"),
        pytest.param(user("alice"), "share", False, id="unknown-action"),
    ],
)
def test_object_policy(principal: Principal, action: str, allowed: bool) -> None:
    """Ownership and tenant rules decide object access; unknown actions are denied."""
    assert POLICY.can(principal, action, Note("alice", "acme")) is allowed


def test_filter_lists_only_visible_objects() -> None:
    """List endpoints return only what the caller may read."""
    notes = [Note("alice", "acme"), Note("bob", "acme"), Note("alice", "evil")]

    assert POLICY.filter(user("alice"), "read", notes) == [notes[0]]
    assert POLICY.filter(user("carol", roles=("admin",)), "read", notes) == notes[:2]


@pytest.mark.parametrize(
    ("principal", "action", "error"),
    [
        pytest.param(user("bob"), "read", NotFound, id="unreadable-is-404"),
        pytest.param(user("bob"), "delete", NotFound, id="unreadable-delete-is-404"),
        pytest.param(user("carol", roles=("admin",)), "update", Forbidden, id="readable-not-editable-403"),
    ],
)
def test_check_hides_or_forbids(principal: Principal, action: str, error: type[Exception]) -> None:
    """The load-then-check helper answers 404 for invisible objects and 403 for read-only ones."""
    with pytest.raises(error):
        POLICY.check(principal, action, Note("alice", "acme"))


def test_check_missing_object_is_404() -> None:
    """A missing object is NotFound, like one the caller may not see."""
    with pytest.raises(NotFound):
        POLICY.check(user("alice"), "read", None)


def test_check_returns_allowed_object() -> None:
    """An allowed object is returned for the handler to act on."""
    note = Note("alice", "acme")

    assert POLICY.check(user("alice"), "update", note) is note


def test_mapping_resources_work_too() -> None:
    """Predicates read attributes from dicts as well as objects."""
    assert POLICY.can(user("alice"), "read", {"owner": "alice", "tenant": "acme"})
