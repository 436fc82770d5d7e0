"""Waves in dependency order: record the intent, write in parallel, confirm; dependents of a failure wait.

Within a wave writes run in parallel. When one fails its dependents are
skipped and independent resources still proceed; the run reports every failure
and skip at the end, and a rerun converges. Objects a conflict leaves in place
block what depends on them before anything is written.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Mapping, Sequence

from planner.applying.inventory import Fence, InventoryBook
from planner.applying.outcome import ApplyOutcome, Event, describe_error
from planner.applying.writes import old_live_resource, write
from planner.contract import Writer
from planner.errors import FlowplanError
from planner.graph import ApplyOrder
from planner.plan import Plan, ResourceChange
from planner.resources import Address


def blocked_by_conflicts(plan: Plan) -> dict[Address, str]:
    """Changes that depend (transitively) on an address taken by an object flowplan does not own."""
    by_address = plan.by_address()
    blocked: dict[Address, str] = {}
    unavailable = {c.address: f"{c.address} is taken by an object flowplan does not own" for c in plan.conflicts}
    for wave in plan.waves:  # waves are in dependency order: one pass blocks transitive dependents
        for address in wave:
            why = next((unavailable[d] for d in by_address[address].depends_on if d in unavailable), None)
            if why is not None:
                blocked[address] = why
                unavailable[address] = why
    return blocked


class WaveRunner:
    """Runs a plan's waves through the backends' writers, booking every step in the inventory."""

    def __init__(
        self,
        plan: Plan,
        order: ApplyOrder,
        writers: Mapping[str, Writer],
        book: InventoryBook,
        parallelism: int,
        on_event: Event | None = None,
        fence: Fence | None = None,
    ) -> None:
        """``fence`` raises when the apply's locks may no longer be held; it is called before every write."""
        self.plan = plan
        self.order = order
        self.writers = writers
        self.book = book
        self.parallelism = parallelism
        self.on_event = on_event
        self.fence = fence
        self.outcome = ApplyOutcome(plan=plan)
        self.blocked = blocked_by_conflicts(plan)
        #: moves whose old object goes once everything that used it has moved
        self.deferred: list[ResourceChange] = []
        self._lock = threading.Lock()

    def _event(self, kind: str, change: ResourceChange, detail: str | None = None) -> None:
        if self.on_event is not None:
            self.on_event(kind, change, detail)

    def run(self) -> ApplyOutcome:
        by_address = self.plan.by_address()
        for wave in self.plan.waves:
            self.run_wave([by_address[address] for address in wave])
        self.clean_up_moves()
        return self.outcome

    def run_wave(self, wave: Sequence[ResourceChange]) -> None:
        """Intent saved, writes in parallel, confirmations saved; blocked changes are skipped."""
        todo: list[ResourceChange] = []
        for change in wave:
            why = self.blocked.get(change.address)
            if why is not None:
                self.outcome.skipped[change.address] = why
                self._event("skip", change, why)
            else:
                todo.append(change)
        if not todo:
            return
        names = {c.address.backend for c in todo}
        self.book.intend(todo)
        self.book.save(names)
        workers = max(1, min(self.parallelism, len(todo)))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="flowplan-write") as pool:
            futures = {pool.submit(self._write, change): change for change in todo}
            for future in concurrent.futures.as_completed(futures):
                self._settle(futures[future], future.exception())
        self.book.save(names)

    def _write(self, change: ResourceChange) -> None:
        self._event("start", change)
        if self.fence is not None:
            self.fence()  # last thing before the write: the window in which a pause lets a stale write land
        if write(self.writers[change.address.backend], change):
            with self._lock:
                self.deferred.append(change)

    def _settle(self, change: ResourceChange, error: BaseException | None) -> None:
        """Book one finished write; a failure blocks everything that depends on it."""
        self.outcome.writes += 1
        if error is None:
            self.outcome.succeeded.append(change.address)
            self.book.confirm(change)
            self._event("done", change)
            return
        message = describe_error(error)
        self.outcome.failed[change.address] = message
        self._event("fail", change, message)
        for dependent in self.order.dependents(change.address):
            self.blocked.setdefault(dependent, f"{change.address} failed")
        # the intent stays: the next run reads back and repairs

    def clean_up_moves(self) -> None:
        """Delete the old objects of moves once everything that used them has moved (dependents first).

        A move whose dependents failed keeps its old object: the old schedule may
        still point at it, and the next run finishes the job.
        """
        troubled = set(self.outcome.failed) | set(self.outcome.skipped)
        ready = [c for c in self.deferred if not (self.order.dependents(c.address) & troubled)]
        ranks = self.order.ranks
        ready.sort(key=lambda c: (-ranks.get((c.address.backend, c.address.kind), 0), c.address.sort_key()))
        for change in ready:
            assert change.moved_from is not None
            if self.fence is not None:
                self.fence()
            try:
                self.writers[change.address.backend].delete(old_live_resource(change))
            except FlowplanError as exc:
                self.outcome.failed[change.moved_from] = exc.render()
                self._event("fail", change, f"removing {change.moved_from}: {exc.message}")
                continue
            self.book.forget_old(change)
        if ready:
            self.book.save({c.address.backend for c in ready})
