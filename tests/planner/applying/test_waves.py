"""The waves stage: intent, parallel writes, confirmation; what depends on a failure or a conflict waits."""

from __future__ import annotations

import threading

from planner.applying.inventory import InventoryBook
from planner.applying.waves import WaveRunner, blocked_by_conflicts
from planner.contract import Writer
from planner.errors import BackendError
from planner.resources import Address, LiveResource, Resource
from tests.planner.applying.conftest import Stand

CACHE = Address.parse("local.ConfigMap.argo/recsys-prod-sink-feature-cache")
REPORT_TEMPLATE = Address.parse("local.WorkflowTemplate.argo/recsys-prod-report")
REPORT_CRON = Address.parse("local.CronWorkflow.argo/recsys-prod-report")


class FailingWriter:
    """The files writer, except that creating ``broken`` fails as a backend would."""

    def __init__(self, inner: Writer, broken: Address) -> None:
        self.inner, self.broken = inner, broken

    def create(self, resource: Resource) -> LiveResource | None:
        if resource.address == self.broken:
            raise BackendError(f"cannot create {resource.address}: the disk is full")
        return self.inner.create(resource)

    def update(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        return self.inner.update(resource, live)

    def delete(self, live: LiveResource) -> None:
        self.inner.delete(live)

    def replace(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        return self.inner.replace(resource, live)


def test_a_failed_write_skips_its_dependents_and_keeps_its_intent(stand: Stand) -> None:
    result = stand.plan()
    assert result.order is not None
    backends = stand.session.backends
    writers = {"local": FailingWriter(backends["local"].writer(), CACHE)}
    book = InventoryBook(result, backends, ["local"], dry_run=False)
    events: list[tuple[str, str]] = []
    guard = threading.Lock()

    def record(kind: str, change: object, detail: str | None) -> None:
        with guard:
            events.append((kind, str(getattr(change, "address", ""))))

    outcome = WaveRunner(result.plan, result.order, writers, book, parallelism=4, on_event=record).run()

    dependents = result.order.dependents(CACHE)
    assert dependents, "the cache's sensor and template depend on it"
    assert set(outcome.failed) == {CACHE} and "the disk is full" in outcome.failed[CACHE]
    assert set(outcome.skipped) == dependents
    assert all(why == f"{CACHE} failed" for why in outcome.skipped.values())
    assert set(outcome.succeeded) == {c.address for c in result.plan.changes} - dependents - {CACHE}
    assert outcome.writes == len(outcome.succeeded) + 1
    entries = stand.inventory().entries
    assert entries[CACHE].state == "pending-create"  # the next plan reads back and repairs
    assert all(entries[a].state == "applied" for a in outcome.succeeded)
    assert not dependents & set(entries)
    assert {kind for kind, address in events if address == str(CACHE)} == {"start", "fail"}
    assert {(kind, str(a)) for a in dependents for kind in ("skip",)} <= set(events)


def test_what_depends_on_a_conflict_is_blocked_before_anything_is_written(stand: Stand) -> None:
    foreign = stand.project.root / "deploy/argo/workflowtemplate/recsys-prod-report.yaml"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("# hand-written\napiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\n")
    plan = stand.plan().plan
    assert [c.address for c in plan.conflicts] == [REPORT_TEMPLATE]
    assert blocked_by_conflicts(plan) == {REPORT_CRON: f"{REPORT_TEMPLATE} is taken by an object flowplan does not own"}


def test_a_dry_run_writes_no_inventory(stand: Stand) -> None:
    result = stand.plan()
    assert result.order is not None
    backends = stand.session.backends
    book = InventoryBook(result, backends, ["local"], dry_run=True)
    writers = {"local": backends["local"].writer(dry_run=True)}
    outcome = WaveRunner(result.plan, result.order, writers, book, parallelism=2).run()
    assert outcome.ok and len(outcome.succeeded) == len(result.plan.changes)
    assert stand.inventory().entries == {} and stand.project.deployed() == []
