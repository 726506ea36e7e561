"""Authorization as data plus plain predicates: route requirements, RBAC and object rules.

Why a module of our own rather than pycasbin: our rules are a handful of typed Python
predicates over a `Principal` and the application's own objects (ownership, tenant), which
casbin would express as matcher strings evaluated at run time, with policies in CSV/DB adapters
and no static types. Keeping them as functions makes every rule testable alone, checked by
mypy, free of a new dependency, and cheap enough to run on every list item.

Scopes are consent, not permission (RFC 6749 §3.3): a request needs the token's scopes AND the
caller's entitlements from roles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from bastion.guard._principal import Kind, Principal
from bastion.protocol.errors import Forbidden, InsufficientScope, NotFound, OAuthError

__all__ = [
    "PUBLIC",
    "RBAC",
    "ObjectPolicy",
    "Predicate",
    "Requirement",
    "RoleRequired",
    "all_of",
    "any_of",
    "authorize",
    "has_permission",
    "is_owner",
    "require_scopes",
    "same_tenant",
]

Credential = Literal["token", "api_key"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route needs: credentials it accepts, scopes (consent), permissions (entitlement)."""

    scopes: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    accept: frozenset[Credential] = frozenset({"token"})
    kinds: frozenset[Kind] | None = None
    public: bool = False


PUBLIC = Requirement(public=True, accept=frozenset())


def require_scopes(
    *scopes: str,
    permissions: Sequence[str] = (),
    accept: Iterable[Credential] = ("token",),
    kinds: Iterable[Kind] | None = None,
) -> Requirement:
    """A requirement: every scope in `scopes` and every permission in `permissions`."""
    return Requirement(
        tuple(scopes),
        tuple(permissions),
        frozenset(accept),
        frozenset(kinds) if kinds is not None else None,
    )


@dataclass(frozen=True, slots=True)
class RBAC:
    """Roles to permissions; roles from the token's `roles` claim and/or the app's lookup."""

    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    lookup: Callable[[Principal], Iterable[str]] | None = None

    @classmethod
    def from_mapping(
        cls,
        roles: Mapping[str, Iterable[str]],
        lookup: Callable[[Principal], Iterable[str]] | None = None,
    ) -> RBAC:
        """Build from role name to permission names."""
        return cls({r: frozenset(p) for r, p in roles.items()}, lookup)

    def roles_of(self, principal: Principal) -> frozenset[str]:
        """The caller's roles: RFC 9068 §2.2.3.1 `roles` claim plus the application's lookup."""
        extra = frozenset(self.lookup(principal)) if self.lookup is not None else frozenset()
        return principal.roles | extra

    def permissions_of(self, principal: Principal) -> frozenset[str]:
        """Every permission granted by any of the caller's roles."""
        granted: set[str] = set()
        for role in self.roles_of(principal):
            granted |= self.roles.get(role, frozenset())
        return frozenset(granted)

    def has(self, principal: Principal, permission: str) -> bool:
        """True when one of the caller's roles grants `permission`."""
        return permission in self.permissions_of(principal)


def authorize(principal: Principal, requirement: Requirement, rbac: RBAC | None) -> None:
    """Function-level check (against BFLA): scopes AND role permissions.

    Raises:
        InsufficientScope: a scope is missing (RFC 6750 §3.1, 403).
        Forbidden: the caller's kind or roles do not entitle it.
    """
    if requirement.kinds is not None and principal.kind not in requirement.kinds:
        raise Forbidden(detail=f"{principal.kind} may not call this route")
    if not principal.scopes.issuperset(requirement.scopes):
        missing = [s for s in requirement.scopes if s not in principal.scopes]
        raise InsufficientScope(requirement.scopes, detail=f"missing {missing}")
    if requirement.permissions:
        granted = rbac.permissions_of(principal) if rbac is not None else frozenset()
        lacking = [p for p in requirement.permissions if p not in granted]
        if lacking:
            raise RoleRequired(principal, lacking, rbac)


class RoleRequired(Forbidden):
    """403: the caller's roles do not grant a permission the route needs.

    The description names the roles that would (the route's contract, not a secret), and, when
    the token carries no roles at all, the usual cause: Bastion puts the `roles` claim in an
    access token only when the client asked for the `roles` scope.
    """

    def __init__(self, principal: Principal, lacking: Sequence[str], rbac: RBAC | None) -> None:
        roles = sorted({r for r, granted in (rbac.roles.items() if rbac else ()) if granted & set(lacking)})
        needs = f"requires role {' or '.join(roles)}" if roles else f"requires permission {', '.join(lacking)}"
        description = f"{needs}; the caller's roles do not grant it"
        if principal.kind != "api_key" and not principal.roles:
            description = f"{needs}; the token carries no roles claim: request the `roles` scope"
        OAuthError.__init__(self, description, detail=f"missing permissions {list(lacking)}")


Predicate = Callable[[Principal, Any], bool]


def is_owner(attribute: str = "owner") -> Predicate:
    """The resource's `attribute` names the caller (issuer-qualified subjects compare equal)."""

    def predicate(principal: Principal, resource: Any) -> bool:
        return principal.kind == "user" and _get(resource, attribute) == principal.subject

    return predicate


def same_tenant(tenant_of: Callable[[Principal], str | None], attribute: str = "tenant") -> Predicate:
    """The resource belongs to the caller's tenant (no caller tenant: never)."""

    def predicate(principal: Principal, resource: Any) -> bool:
        tenant = tenant_of(principal)
        return tenant is not None and _get(resource, attribute) == tenant

    return predicate


def has_permission(rbac: RBAC, permission: str) -> Predicate:
    """The caller's roles grant `permission`."""

    def predicate(principal: Principal, resource: Any) -> bool:
        return rbac.has(principal, permission)

    return predicate


def all_of(*predicates: Predicate) -> Predicate:
    """Every predicate holds."""
    return lambda principal, resource: all(p(principal, resource) for p in predicates)


def any_of(*predicates: Predicate) -> Predicate:
    """At least one predicate holds."""
    return lambda principal, resource: any(p(principal, resource) for p in predicates)


def _get(resource: Any, attribute: str) -> Any:
    if isinstance(resource, Mapping):
        return resource.get(attribute)
    return getattr(resource, attribute, None)


@dataclass(frozen=True, slots=True)
class ObjectPolicy:
    """Object-level rules (against BOLA): action name to a predicate; no rule means no."""

    rules: Mapping[str, Predicate]
    read_action: str = "read"

    def can(self, principal: Principal, action: str, resource: Any) -> bool:
        """May `principal` perform `action` on `resource`? Deny by default."""
        rule = self.rules.get(action)
        return rule is not None and bool(rule(principal, resource))

    def filter(self, principal: Principal, action: str, resources: Iterable[T]) -> list[T]:
        """The resources of a list endpoint the caller may see."""
        return [r for r in resources if self.can(principal, action, r)]

    def check(self, principal: Principal, action: str, resource: T | None) -> T:
        """Load-then-check helper: the resource if allowed, else a refusal.

        An object the caller may not even read is answered as missing (404) so that ids of
        other people's objects cannot be probed; a readable one the caller may not change
        gets 403.

        Raises:
            NotFound: missing, or not readable by the caller.
            Forbidden: readable, but `action` is not allowed.
        """
        if resource is None or not self.can(principal, self.read_action, resource):
            raise NotFound(detail=f"{action} refused: not readable by {principal.actor}")
        if action != self.read_action and not self.can(principal, action, resource):
            raise Forbidden(detail=f"{action} refused for {principal.actor}")
        return resource
