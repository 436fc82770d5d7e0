"""What planning is asked (:class:`PlanOptions`) and what it saw and produced (views, result).

The views outlive the plan: apply keeps each backend's inventory bookkeeping from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.contract import Backend, InventoryEntry, InventoryState, LiveState, Scope
from planner.graph import ApplyOrder
from planner.plan import Plan
from planner.resources import Address, Resource

DEFAULT_DESTROY_THRESHOLD = 10


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    mode: str = "normal"  # normal | destroy | refresh-only
    allow_destroy: bool = False
    destroy_threshold: int = DEFAULT_DESTROY_THRESHOLD
    adopt: bool = False
    imports: tuple[str, ...] = ()
    import_from: tuple[tuple[str, str], ...] = ()  # (desired address, name of the existing object)
    parallelism: int = 4


@dataclass
class RenamedScope:
    """The project or branch this one was renamed from (``moved: [{kind: project|branch, ...}]``)."""

    scope: Scope
    inventory: InventoryState
    live: LiveState


@dataclass
class BackendView:
    """What one backend looked like while planning (kept for apply's inventory bookkeeping)."""

    backend: Backend
    scope: Scope
    desired: dict[Address, Resource]
    live: LiveState
    inventory: InventoryState
    reconciled: dict[Address, InventoryEntry]
    renamed: RenamedScope | None = None


@dataclass
class PlanResult:
    plan: Plan
    views: dict[str, BackendView] = field(default_factory=dict)
    order: ApplyOrder | None = None
    desired: dict[Address, Resource] = field(default_factory=dict)
    #: Each backend's compiled resources, for planning again from the same manifest (apply, under the lock).
    compiled: dict[str, list[Resource]] = field(default_factory=dict)
