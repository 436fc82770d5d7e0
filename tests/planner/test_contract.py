"""A backend defined entirely in this file runs the whole loop through the public contract.

``ToyBackend`` keeps its objects, inventory and lock in one dict. It implements
:mod:`planner.contract` and nothing else: if plan → apply → empty plan → drift
works here, adding an orchestrator is adding a folder, and the core does not
change. This is also the walk-through that docs/design.md points to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from planner.applying import Transaction, raise_for_outcome
from planner.building import PlanOptions, build_plan
from planner.contract import (
    Backend,
    Capabilities,
    CompileContext,
    Compiler,
    Inventory,
    InventoryState,
    LiveState,
    Lock,
    LockInfo,
    Reader,
    Scope,
    Writer,
    lock_held,
)
from planner.drift import drift_report
from planner.errors import ConflictError, LockError
from planner.manifest import Backend as BackendSpec
from planner.manifest import load_manifest
from planner.plan import Action
from planner.resources import Address, LiveResource, Owner, Provenance, Resource, digest

MANIFEST = """\
version: 1
project: toys
backends:
  shelf: {type: files}
flows:
  build:
    schedule: {cron: "0 3 * * *"}
    steps:
      start: {image: "acme/build:1", command: [make]}
  paint:
    steps:
      start: {image: "acme/paint:1", command: [paint]}
"""

KIND = "Job"


class ToyStore:
    """Everything the toy orchestrator holds: objects by name, inventories and locks by scope."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.inventories: dict[str, str] = {}
        self.locks: dict[str, LockInfo] = {}
        self.writes = 0


class ToyCompiler(Compiler):
    """One ``Job`` per flow: its image and, when it has one, its cron."""

    def compile(self, context: CompileContext) -> list[Resource]:
        resources = []
        for flow in context.manifest.flows_on(context.backend.name):
            body: dict[str, Any] = {
                "name": f"{context.manifest.project}-{flow.name}",
                "image": next(iter(flow.steps.values())).image,
                "cron": flow.schedule.cron if flow.schedule else None,
            }
            address = Address(context.backend.name, KIND, "toyland", body["name"])
            resources.append(Resource(address, body, flow=flow.name))
        return resources


def _owned_body(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "owner"}


class ToyReader(Reader):
    def __init__(self, store: ToyStore, backend: str) -> None:
        self.store, self.backend = store, backend

    def read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        state = LiveState()
        for name, stored in sorted(self.store.objects.items()):
            address = Address(self.backend, KIND, "toyland", name)
            owner = Owner(*stored["owner"]) if stored.get("owner") else None
            live = LiveResource(address, _owned_body(stored), digest(stored), owner=owner)
            if owner is not None and (owner.project, owner.branch) == (scope.project, scope.branch):
                state.owned[address] = live
            elif any(r.address == address for r in desired):
                state.others[address] = live
        return state


class ToyWriter(Writer):
    def __init__(self, store: ToyStore, scope: Scope) -> None:
        self.store, self.scope = store, scope

    def _stamp(self, resource: Resource) -> dict[str, Any]:
        return {**resource.body, "owner": [self.scope.project, self.scope.branch, resource.flow]}

    def create(self, resource: Resource) -> LiveResource | None:
        if resource.address.name in self.store.objects:
            raise ConflictError(f"{resource.address} exists already")
        self.store.objects[resource.address.name] = self._stamp(resource)
        self.store.writes += 1
        return None

    def update(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        current = self.store.objects.get(live.address.name)
        if current is None or digest(current) != live.version:
            raise ConflictError(f"{live.address} changed since the plan")
        self.store.objects[resource.address.name] = self._stamp(resource)
        self.store.writes += 1
        return None

    def delete(self, live: LiveResource) -> None:
        self.store.objects.pop(live.address.name, None)
        self.store.writes += 1


class ToyInventory(Inventory):
    def __init__(self, store: ToyStore, key: str) -> None:
        self.store, self.key = store, key

    def load(self) -> InventoryState:
        text = self.store.inventories.get(self.key)
        return InventoryState() if text is None else InventoryState.from_json(json.loads(text), version=text)

    def save(self, state: InventoryState) -> InventoryState:
        text = json.dumps(state.to_json(), sort_keys=True)
        self.store.inventories[self.key] = text
        return InventoryState(state.entries, state.revisions, text)


class ToyLock(Lock):
    def __init__(self, store: ToyStore, key: str) -> None:
        self.store, self.key = store, key

    def acquire(self, info: LockInfo) -> None:
        held = self.store.locks.get(self.key)
        if held is not None and not held.expired:
            raise lock_held(held, f"toy scope {self.key}")
        self.store.locks[self.key] = info

    def renew(self, info: LockInfo) -> None:
        self.store.locks[self.key] = info

    def release(self, info: LockInfo) -> None:
        self.store.locks.pop(self.key, None)

    def current(self) -> LockInfo | None:
        return self.store.locks.get(self.key)

    def force_unlock(self) -> LockInfo | None:
        return self.store.locks.pop(self.key, None)


class ToyBackend(Backend):
    capabilities = Capabilities()

    def __init__(self, spec: BackendSpec, store: ToyStore) -> None:
        self.spec, self.store = spec, store

    def compiler(self) -> Compiler:
        return ToyCompiler()

    def reader(self) -> Reader:
        return ToyReader(self.store, self.spec.name)

    def writer(self, dry_run: bool = False) -> Writer:
        return ToyWriter(self.store, Scope(self.spec.name, "toys", "prod"))

    def inventory(self, scope: Scope) -> Inventory:
        return ToyInventory(self.store, f"{scope.project}/{scope.branch}")

    def lock(self, scope: Scope) -> Lock:
        return ToyLock(self.store, f"{scope.project}/{scope.branch}")

    def describe(self) -> str:
        return "the toy store"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, ToyStore]:
    path = tmp_path / "flows.yaml"
    path.write_text(MANIFEST)
    return path, ToyStore()


def _plan(path: Path, store: ToyStore) -> Any:
    manifest = load_manifest(path)
    backends = {name: ToyBackend(spec, store) for name, spec in manifest.backends.items()}
    provenance = Provenance("test", manifest.digest)
    return manifest, backends, provenance, build_plan(manifest, backends, provenance, PlanOptions())


def _apply(path: Path, store: ToyStore) -> None:
    """The one transaction: lock, plan again under the lock, compare, write, record, release."""
    manifest, backends, provenance, result = _plan(path, store)

    def replan() -> Any:
        return build_plan(manifest, backends, provenance, PlanOptions(), compiled=result.compiled)

    raise_for_outcome(Transaction(backends, provenance, replan).apply(result))


def test_plan_apply_empty_plan_and_drift_through_the_contract(world: tuple[Path, ToyStore]) -> None:
    path, store = world
    *_, first = _plan(path, store)
    assert {str(c.address): c.action for c in first.plan.changes} == {
        "shelf.Job.toyland/toys-build": Action.CREATE,
        "shelf.Job.toyland/toys-paint": Action.CREATE,
    }
    assert store.objects == {} and store.inventories == {}  # planning wrote nothing

    _apply(path, store)
    assert store.objects["toys-build"]["cron"] == "0 3 * * *"
    assert store.locks == {}  # released
    inventory = json.loads(store.inventories["toys/prod"])
    assert sorted(inventory["entries"]) == ["shelf.Job.toyland/toys-build", "shelf.Job.toyland/toys-paint"]

    *_, again = _plan(path, store)
    assert again.plan.is_empty

    store.objects["toys-paint"]["image"] = "acme/paint:hand-edited"
    *_, drifted = _plan(path, store)
    report = drift_report(drifted.plan)
    assert not report["in_sync"]
    (item,) = report["drift"]
    assert item["kind"] == "changed"
    assert item["address"] == "shelf.Job.toyland/toys-paint"
    assert [f["path"] for f in item["fields"]] == ["/image"]


def test_a_foreign_object_at_a_desired_name_is_a_conflict_and_stays_untouched(world: tuple[Path, ToyStore]) -> None:
    path, store = world
    store.objects["toys-build"] = {"name": "toys-build", "image": "someone/else", "cron": None}
    *_, result = _plan(path, store)
    assert [str(c.address) for c in result.plan.conflicts] == ["shelf.Job.toyland/toys-build"]
    assert [str(c.address) for c in result.plan.changes] == ["shelf.Job.toyland/toys-paint"]
    _apply(path, store)
    assert store.objects["toys-build"] == {"name": "toys-build", "image": "someone/else", "cron": None}


def test_a_held_lock_stops_the_apply_before_any_write(world: tuple[Path, ToyStore]) -> None:
    path, store = world
    store.locks["toys/prod"] = LockInfo.here("apply", ttl=60)
    with pytest.raises(LockError, match="held by"):
        _apply(path, store)
    assert store.writes == 0 and store.objects == {}
