"""The inventory side of an apply: intents before each wave, confirmations after, repairs of killed applies.

The inventory is written as the apply progresses (intent saved before a wave's writes, confirmed
after), so a crash at any point leaves ``pending-*`` entries that the next plan reconciles with
what is live and the next apply stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from planner.building import BackendView, PlanResult
from planner.contract import Backend, InventoryEntry, InventoryState
from planner.plan import Action, ResourceChange
from planner.resources import Address, spec_hash

#: Raises :class:`~planner.errors.LockError` when the apply's locks may no longer be held (see ``LockRenewer.check``).
Fence = Callable[[], None]

_INTENT: dict[Action, str] = {
    Action.CREATE: "pending-create",
    Action.UPDATE: "pending-update",
    Action.ADOPT: "pending-update",
    Action.MOVE: "pending-create",
    Action.REPLACE: "pending-update",
    Action.DELETE: "pending-delete",
}


def starting_entries(view: BackendView, planned: Mapping[Address, ResourceChange]) -> dict[Address, InventoryEntry]:
    """The inventory an apply starts from: intents reconciled, unchanged owned objects at desired names recorded."""
    current = dict(view.reconciled)
    for address, live in view.live.owned.items():
        if address in view.desired and address not in current and address not in planned:
            current[address] = InventoryEntry(
                spec_hash(live.body, view.desired[address].volatile_paths),
                "applied",
                live.owner.flow if live.owner else None,
            )
    return current


def inventory_repairs(result: PlanResult) -> dict[str, dict[Address, InventoryEntry]]:
    """Backends whose stored inventory differs from what planning reconciled, with the entries to store.

    Only an apply that was killed between recording an intent and confirming
    it leaves such a difference (a ``pending-*`` entry, or an object it made
    whose intent it never saved). Planning resolves them in memory; when the
    plan is empty nothing else would ever write them, so an empty apply stores
    them (under the lock) and the inventory matches what is live again.
    """
    planned = result.plan.by_address()
    repairs = {}
    for name, view in sorted(result.views.items()):
        entries = starting_entries(view, planned)
        if entries != dict(view.inventory.entries):
            repairs[name] = entries
    return repairs


def untidy_backends(backends: Mapping[str, Backend]) -> list[str]:
    """Backends holding leftovers of a killed apply (temporary files of the files backend)."""
    return sorted(name for name, b in backends.items() if b.capabilities.leftovers and b.leftovers())


def intent(change: ResourceChange) -> InventoryEntry:
    """The ``pending-*`` entry recorded before ``change`` is written."""
    body = change.after if change.after is not None else change.before or {}
    return InventoryEntry(spec_hash(body, change.volatile_paths), _INTENT[change.action], change.flow)  # type: ignore[arg-type]


def old_intent(change: ResourceChange) -> InventoryEntry:
    """The entry of the object a move leaves behind, until it is deleted."""
    return InventoryEntry(spec_hash(change.before or {}, change.volatile_paths), "pending-delete", change.flow)


class InventoryBook:
    """The inventories one apply writes, kept in memory and saved around each wave.

    Objects moving from a renamed project or branch are booked in that scope's inventory.
    Nothing is saved on a dry run, and nothing once ``fence`` says the locks may be lost.
    """

    def __init__(
        self,
        result: PlanResult,
        backends: Mapping[str, Backend],
        names: Iterable[str],
        dry_run: bool,
        fence: Fence | None = None,
    ) -> None:
        self.result = result
        self.fence = fence
        self.backends = backends
        self.dry_run = dry_run
        planned = result.plan.by_address()
        self.names = sorted(set(names))
        self.entries = {name: starting_entries(result.views[name], planned) for name in self.names}
        self.states: dict[str, InventoryState] = {name: result.views[name].inventory for name in self.names}
        self.old_entries: dict[str, dict[Address, InventoryEntry]] = {}
        self.old_states: dict[str, InventoryState] = {}
        for name in self.names:
            renamed = result.views[name].renamed
            if renamed is not None and any(c.moved_scope and c.address.backend == name for c in result.plan.changes):
                self.old_entries[name] = dict(renamed.inventory.entries)
                self.old_states[name] = renamed.inventory

    def _book(self, change: ResourceChange) -> dict[Address, InventoryEntry]:
        """Where the inventory entry of what a change moves *from* lives."""
        name = change.address.backend
        return self.old_entries[name] if change.moved_scope and name in self.old_entries else self.entries[name]

    def intend(self, changes: Iterable[ResourceChange]) -> None:
        for change in changes:
            self.entries[change.address.backend][change.address] = intent(change)
            if change.moved_from is not None:
                self._book(change)[change.moved_from] = old_intent(change)

    def confirm(self, change: ResourceChange) -> None:
        """``change`` was written: its entry says so (a delete drops it; a firing move's old object is gone)."""
        entries = self.entries[change.address.backend]
        if change.action is Action.DELETE:
            entries.pop(change.address, None)
            return
        assert change.after is not None
        entries[change.address] = InventoryEntry(spec_hash(change.after, change.volatile_paths), "applied", change.flow)
        if change.action is Action.MOVE and change.fires and change.moved_from is not None:
            self._book(change).pop(change.moved_from, None)

    def forget_old(self, change: ResourceChange) -> None:
        """The old object of a move was deleted."""
        assert change.moved_from is not None
        self._book(change).pop(change.moved_from, None)

    def save(self, names: Iterable[str]) -> None:
        if self.dry_run:
            return
        for name in sorted(set(names)):
            if self.fence is not None:
                self.fence()
            view = self.result.views[name]
            state = self.states[name].with_entries(self.entries[name])
            self.states[name] = self.backends[name].inventory(view.scope).save(state)
            if name in self.old_entries and view.renamed is not None:
                old = self.old_states[name].with_entries(self.old_entries[name])
                self.old_states[name] = self.backends[name].inventory(view.renamed.scope).save(old)

    def store(self, name: str, state: InventoryState) -> None:
        """Save ``state`` (its revisions) with the entries booked so far."""
        if self.fence is not None:
            self.fence()
        view = self.result.views[name]
        self.states[name] = self.backends[name].inventory(view.scope).save(state.with_entries(self.entries[name]))


def store_repairs(
    result: PlanResult, backends: Mapping[str, Backend], repairs: Mapping[str, Mapping[Address, InventoryEntry]]
) -> None:
    """Store repaired inventories (the caller holds the locks)."""
    for name, entries in sorted(repairs.items()):
        view = result.views[name]
        backends[name].inventory(view.scope).save(view.inventory.with_entries(entries))
