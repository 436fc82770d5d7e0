"""The one apply transaction: the only way flowplan changes a backend.

Every command that writes (``apply``, ``apply FILE``, ``destroy``, ``rollback``,
``import``, ``branches --prune``, and the repair an empty apply makes) runs the
same stages, each a small step of its own module:

1. **compare** the plan the person saw with the one just made (a saved plan is
   checked before any lock, so a stale plan writes nothing at all);
2. **confirm**: the caller's question, asked only when there is something to do;
3. **lock** every backend with changes, all or none, in name order
   (:mod:`planner.applying.locks`);
4. **re-plan** under the lock and **compare** again: apply exactly what was
   shown, or nothing;
5. **waves**: intent → writes in parallel → confirm (:mod:`planner.applying.waves`,
   :mod:`planner.applying.inventory`);
6. **revision** recorded (:mod:`planner.applying.revision`);
7. **release** the locks, whatever happened.

A dry run (the backend validates each write, nothing persists) skips the lock,
the re-plan, the inventory and the revision: it writes nothing to keep safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from planner.applying.compare import check_same
from planner.applying.inventory import InventoryBook, inventory_repairs, store_repairs, untidy_backends
from planner.applying.locks import HeldLocks, LockRenewer, backends_to_lock
from planner.applying.outcome import ApplyOptions, ApplyOutcome, Event
from planner.applying.revision import record_revision
from planner.applying.waves import WaveRunner
from planner.building import PlanResult
from planner.contract import Backend
from planner.plan import Plan, ResourceChange
from planner.resources import Provenance

#: Plans again from the same manifest, reading the live state anew (called under the lock).
Replan = Callable[[], PlanResult]


class Watch(Protocol):
    """What the caller shows while the writes run (a progress bar, one line per change)."""

    def __enter__(self) -> object: ...

    def __exit__(self, *exc: object) -> None: ...

    def event(self, kind: str, change: ResourceChange, detail: str | None) -> None: ...


#: Makes the :class:`Watch` of an apply, given the plan about to run and whether it is a dry run.
Watcher = Callable[[Plan, bool], Watch]


@dataclass(frozen=True)
class Seen:
    """The plan the person saw and how a refusal names it.

    ``saved_as`` is set when the plan was made earlier (a saved plan file): it is compared with a
    fresh plan before any lock is taken.
    """

    plan: Plan
    name: str = "the plan shown"
    saved_as: str | None = None


@dataclass(frozen=True)
class Repaired:
    """What an empty apply tidied under the lock."""

    #: backend → number of inventory entries stored again
    inventories: dict[str, int] = field(default_factory=dict)
    #: backend → temporary objects removed
    leftovers: dict[str, Sequence[str]] = field(default_factory=dict)


class Transaction:
    """Lock, re-plan, compare, waves, inventory, revision, release — for one set of backends.

    ``replan`` must plan what the first plan planned (same manifest, options and backends);
    only the live state may have moved, and the comparison refuses if it did.
    """

    def __init__(
        self,
        backends: Mapping[str, Backend],
        provenance: Provenance,
        replan: Replan,
        options: ApplyOptions | None = None,
        watcher: Watcher | None = None,
    ) -> None:
        self.backends = backends
        self.provenance = provenance
        self.replan = replan
        self.options = options or ApplyOptions()
        self.watcher = watcher

    def apply(
        self, first: PlanResult, seen: Seen | None = None, confirm: Callable[[Plan], bool] | None = None
    ) -> ApplyOutcome:
        """Apply ``first`` (planned without a lock) as ``seen``; ``confirm`` is asked when there is work."""
        seen = seen or Seen(first.plan)
        if seen.saved_as is not None:
            check_same(seen.plan, first.plan, seen.saved_as)
        if first.plan.is_empty:
            return ApplyOutcome(ending="nothing", plan=first.plan)
        if confirm is not None and not confirm(first.plan):
            return ApplyOutcome(ending="cancelled", plan=first.plan)
        if self.options.dry_run:
            return self._run(first, None)
        with (
            HeldLocks.acquire(
                self.backends, first, backends_to_lock(first), self.options.operation, self.options.lock_ttl
            ) as held,
            held.renewing() as renewer,
        ):
            # renewed from the start: planning again under the lock may take longer than the TTL
            locked = self.replan()
            check_same(seen.plan, locked.plan, seen.name)
            return self._run(locked, renewer)

    def _run(self, result: PlanResult, renewer: LockRenewer | None) -> ApplyOutcome:
        """The waves and the revision of ``result``; ``renewer`` keeps the locks and fences every write
        (None on a dry run, which takes no lock)."""
        assert result.order is not None
        names = {c.address.backend for c in result.plan.changes}
        writers = {name: self.backends[name].writer(dry_run=self.options.dry_run) for name in names}
        fence = renewer.check if renewer is not None else None
        book = InventoryBook(result, self.backends, names, self.options.dry_run, fence)
        watch = self.watcher(result.plan, self.options.dry_run) if self.watcher is not None else None
        event: Event | None = watch.event if watch is not None else None
        runner = WaveRunner(result.plan, result.order, writers, book, self.options.parallelism, event, fence)
        with watch if watch is not None else nullcontext():
            outcome = runner.run()
            if not self.options.dry_run:
                outcome.revision = record_revision(result, book, self.provenance, outcome.succeeded)
        return outcome

    def needs_repair(self, first: PlanResult) -> bool:
        """An empty plan over inventories a killed apply left unconfirmed (or temporary objects it left)."""
        return bool(inventory_repairs(first)) or bool(untidy_backends(self.backends))

    def repair(self, first: PlanResult) -> Repaired:
        """Store reconciled inventories and remove leftovers under the lock, if planning again is still empty.

        Nothing else would ever write them: an empty plan has no waves. When someone changed
        something meanwhile, nothing is done; the next apply records it with its changes.
        """
        untidy = untidy_backends(self.backends)
        names = {*inventory_repairs(first), *untidy}
        with HeldLocks.acquire(self.backends, first, names, self.options.operation, self.options.lock_ttl):
            locked = self.replan()
            if not locked.plan.is_empty:
                return Repaired()
            repairs = inventory_repairs(locked)
            store_repairs(locked, self.backends, repairs)
            cleaned = {name: self.backends[name].clean_leftovers() for name in untidy}
        return Repaired(
            inventories={name: len(entries) for name, entries in repairs.items()},
            leftovers={name: removed for name, removed in cleaned.items() if removed},
        )
