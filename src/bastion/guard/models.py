"""Data in and out: input models that refuse server-owned and unknown fields, output per role.

Mass assignment (OWASP API3:2023, ASVS 15.3.3): a request body may set only the fields its
input model declares. Server-owned fields (`id`, `owner`, `role`, `created_at`, ...) get a 422
naming the field, and any other unknown field is refused too, never silently dropped or bound.
Excessive data exposure: responses go through an output model chosen by the caller's role, so a
field no model declares never leaves the service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from bastion.guard._principal import Principal
from bastion.guard.policy import RBAC

__all__ = ["SERVER_OWNED_FIELDS", "InputModel", "OutputModel", "RoleViews"]

SERVER_OWNED_FIELDS = frozenset(
    {
        "id",
        "owner",
        "owner_id",
        "tenant",
        "tenant_id",
        "role",
        "roles",
        "created_at",
        "updated_at",
        "deleted_at",
        "is_admin",
        "permissions",
        "scope",
        "scopes",
    }
)


class InputModel(BaseModel):
    """Base of request bodies: unknown fields refused, server-owned ones named in the 422."""

    model_config = ConfigDict(extra="forbid")
    server_owned: ClassVar[frozenset[str]] = SERVER_OWNED_FIELDS

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_server_owned(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, Mapping):
            errors = [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "read_only",
                        "{field} is set by the server and cannot be assigned",
                        {"field": name},
                    ),
                    loc=(name,),
                    input=data[name],
                )
                for name in data
                if isinstance(name, str) and name in cls.server_owned and name not in cls.model_fields
            ]
            if errors:
                raise ValidationError.from_exception_data(cls.__name__, errors)
        return handler(data)


class OutputModel(BaseModel):
    """Base of response bodies: built from attributes, undeclared fields dropped."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")


class RoleViews:
    """Which output model each role sees; the first matching role in `views` order wins."""

    def __init__(
        self,
        default: type[OutputModel],
        views: Sequence[tuple[str, type[OutputModel]]] = (),
        *,
        rbac: RBAC | None = None,
    ) -> None:
        self.default = default
        self.views = list(views)
        self.rbac = rbac

    def model_for(self, principal: Principal) -> type[OutputModel]:
        """The output model for the caller's roles."""
        roles = self.rbac.roles_of(principal) if self.rbac is not None else principal.roles
        for role, model in self.views:
            if role in roles:
                return model
        return self.default

    def dump(self, principal: Principal, obj: Any) -> dict[str, Any]:
        """Serialise one object through the caller's output model."""
        return self.model_for(principal).model_validate(obj).model_dump(mode="json")

    def dump_all(self, principal: Principal, objects: Sequence[Any]) -> list[dict[str, Any]]:
        """Serialise a list through the caller's output model."""
        model = self.model_for(principal)
        return [model.model_validate(o).model_dump(mode="json") for o in objects]
