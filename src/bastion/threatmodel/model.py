"""The threat model as data: objectives, assets, assumptions, the data-flow diagram, statuses.

Step 1 (objectives, assets with a classification), step 2 (assumptions) and step 3 (the DFD:
external entities, processes with their API endpoints, data stores, data flows and nested
trust boundaries) of the six-step process, plus the recorded status of each threat (step 6).
Element attributes are kept in `attrs`, filled with their defaults by the schema, so rules and
reports see every attribute whether or not the model spelled it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ElementKind = Literal["external_entity", "process", "data_store", "flow"]
Status = Literal["open", "mitigated", "accepted", "not_applicable"]
STATUSES: tuple[Status, ...] = ("open", "mitigated", "accepted", "not_applicable")

# Data classification, ordered: rules compare levels (`element.sensitivity >= CONFIDENTIAL`).
CLASSIFICATIONS: tuple[str, ...] = ("public", "internal", "confidential", "restricted")

DREAD_FACTORS: tuple[str, ...] = (
    "damage",
    "reproducibility",
    "exploitability",
    "affected_users",
    "discoverability",
)


@dataclass(frozen=True)
class DataAsset:
    """A piece of data worth protecting, with its classification."""

    id: str
    name: str
    classification: str
    pii: bool
    credentials: bool
    description: str
    line: int

    @property
    def level(self) -> int:
        return CLASSIFICATIONS.index(self.classification)


@dataclass(frozen=True)
class Objective:
    """A security objective (step 1): what must hold, about which assets."""

    id: str
    description: str
    assets: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Assumption:
    """Something taken as given (step 2); stated so a reviewer can challenge it."""

    id: str
    description: str
    line: int


@dataclass(frozen=True)
class Boundary:
    """A trust boundary; `parent` nests it inside another."""

    id: str
    name: str
    parent: str | None
    untrusted: bool
    description: str
    line: int


@dataclass(frozen=True)
class Endpoint:
    """One API operation of a process, with the controls that BOLA/BFLA/BOPLA rules examine."""

    id: str
    process: str
    attrs: dict[str, Any]
    line: int

    @property
    def qualified_id(self) -> str:
        return f"{self.process}.{self.id}"

    @property
    def name(self) -> str:
        return f"{self.attrs['method']} {self.attrs['path']}"


@dataclass(frozen=True)
class Element:
    """A DFD element: external entity, process, data store or data flow."""

    id: str
    kind: ElementKind
    name: str
    boundary: str | None
    description: str
    attrs: dict[str, Any]
    line: int
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class DreadOverride:
    """Factors set by hand for one threat, with the reason recorded."""

    factors: dict[str, int]
    reason: str


@dataclass(frozen=True)
class ThreatEntry:
    """The model's statement about one threat id (or an fnmatch pattern of ids)."""

    pattern: str
    status: Status
    mitigation: str
    tests: tuple[str, ...]
    reason: str
    owner: str
    dread: DreadOverride | None
    line: int


@dataclass(frozen=True)
class ThreatModel:
    """A whole model, validated; `file` is where it came from (for errors and SARIF)."""

    name: str
    description: str
    file: str
    objectives: tuple[Objective, ...]
    assets: tuple[DataAsset, ...]
    assumptions: tuple[Assumption, ...]
    boundaries: tuple[Boundary, ...]
    elements: tuple[Element, ...]
    threats: tuple[ThreatEntry, ...]
    rule_files: tuple[str, ...] = ()
    verify_cwd: str | None = None
    _index: dict[str, Element] = field(default_factory=dict, compare=False, repr=False)

    def element(self, element_id: str) -> Element:
        if not self._index:
            self._index.update({e.id: e for e in self.elements})
        return self._index[element_id]

    def boundary(self, boundary_id: str) -> Boundary:
        return next(b for b in self.boundaries if b.id == boundary_id)

    def asset(self, asset_id: str) -> DataAsset:
        return next(a for a in self.assets if a.id == asset_id)

    def boundary_chain(self, boundary_id: str | None) -> tuple[str, ...]:
        """The boundary and its ancestors, innermost first."""
        chain: list[str] = []
        while boundary_id is not None:
            chain.append(boundary_id)
            boundary_id = self.boundary(boundary_id).parent
        return tuple(chain)

    @property
    def flows(self) -> tuple[Element, ...]:
        return tuple(e for e in self.elements if e.kind == "flow")

    @property
    def nodes(self) -> tuple[Element, ...]:
        return tuple(e for e in self.elements if e.kind != "flow")
