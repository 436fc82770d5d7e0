"""What an apply is asked to do and what came of it, in the words the CLI reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from planner.contract import lock_ttl
from planner.errors import ApplyError, FlowplanError
from planner.plan import Plan, ResourceChange
from planner.resources import Address


@dataclass(frozen=True)
class ApplyOptions:
    parallelism: int = 10
    #: every write is sent as the backend's dry run: no lock, no re-plan, no inventory, no revision
    dry_run: bool = False
    #: Seconds the lock lives without renewal; ``FLOWPLAN_LOCK_TTL`` when set (see planner.contract.lock_ttl).
    lock_ttl: float = field(default_factory=lock_ttl)
    #: what the lock says its holder is doing (``apply``, ``destroy``, ``rollback``)
    operation: str = "apply"


#: ``(kind, change, detail)`` with kind ``start``, ``done``, ``fail`` or ``skip``; called from writer threads.
Event = Callable[[str, ResourceChange, str | None], None]

#: ``nothing``: the plan was empty; ``cancelled``: the person said no; ``applied``: the waves ran.
Ending = Literal["nothing", "cancelled", "applied"]


@dataclass
class ApplyOutcome:
    succeeded: list[Address] = field(default_factory=list)
    failed: dict[Address, str] = field(default_factory=dict)
    skipped: dict[Address, str] = field(default_factory=dict)
    writes: int = 0
    revision: int | None = None
    ending: Ending = "applied"
    #: The plan the waves ran: the one made again under the lock (the first one on a dry run).
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def describe_error(error: BaseException) -> str:
    """A write's failure as the person reads it (a FlowplanError renders its own hint)."""
    if isinstance(error, FlowplanError):
        return error.render()
    return f"{type(error).__name__}: {error}"


def raise_for_outcome(outcome: ApplyOutcome) -> None:
    """Turn failures into one ApplyError a person can act on."""
    if outcome.ok:
        return
    lines = []
    for address, message in sorted(outcome.failed.items(), key=lambda kv: kv[0].sort_key()):
        first, _, rest = message.partition("\n")
        lines.append(f"  failed  {address}: {first}")
        if rest:
            lines.extend(f"          {line}" for line in rest.splitlines())
    for address, why in sorted(outcome.skipped.items(), key=lambda kv: kv[0].sort_key()):
        lines.append(f"  skipped {address} (because {why})")
    conflict = any(isinstance(x, str) and "changed since" in x for x in outcome.failed.values())
    hint = "independent changes were applied; fix the cause and run flowplan apply again: it converges"
    if conflict:
        hint = "someone changed these objects since the plan; run flowplan plan to see the current state, then apply"
    raise ApplyError(
        f"{len(outcome.failed)} change(s) failed and {len(outcome.skipped)} were skipped "
        f"({len(outcome.succeeded)} succeeded):\n" + "\n".join(lines),
        hint=hint,
    )
