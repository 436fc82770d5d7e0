"""Guards and targets: what the builder refuses, and what ``--target`` keeps."""

from __future__ import annotations

import pytest

from planner.building import PlanOptions
from planner.contract import InventoryEntry, InventoryState, LiveState
from planner.errors import PlanError
from planner.plan import Action
from planner.resources import Address, LiveResource, Owner, Resource, spec_hash
from tests.planner.building.memory import BRANCH, PROJECT, build


def T(name: str) -> Address:
    return Address("mem", "WorkflowTemplate", "ns", name)


def owned(name: str, *, protected: bool = False) -> LiveResource:
    return LiveResource(T(name), {"metadata": {"name": name}}, "1", Owner(PROJECT, BRANCH, name), protected=protected)


def tracked(*lives: LiveResource) -> tuple[LiveState, InventoryState]:
    live = LiveState(owned={lv.address: lv for lv in lives})
    return live, InventoryState({lv.address: InventoryEntry(spec_hash(lv.body)) for lv in lives})


def test_more_deletes_than_the_threshold_are_refused_unless_allowed() -> None:
    live, state = tracked(*(owned(f"old-{i}") for i in range(4)))
    keep = Resource(T("keep"), {"metadata": {"name": "keep"}})
    with pytest.raises(PlanError, match="more than the safety threshold of 3"):
        build([keep], live, state, PlanOptions(destroy_threshold=3))
    plan = build([keep], live, state, PlanOptions(destroy_threshold=3, allow_destroy=True)).plan
    assert plan.summary()["delete"] == 4


def test_deleting_everything_a_backend_holds_is_refused() -> None:
    live, state = tracked(owned("a"), owned("b"))
    with pytest.raises(PlanError, match="delete everything backend 'mem' holds"):
        build([], live, state)
    assert build([], live, state, PlanOptions(mode="destroy")).plan.summary()["delete"] == 2


def test_protected_objects_are_kept_on_production_only() -> None:
    live, state = tracked(owned("a", protected=True), owned("b"))
    desired = [Resource(T("b"), {"metadata": {"name": "b"}})]
    with pytest.raises(PlanError, match="protected object"):
        build(desired, live, state, branch="prod")
    plan = build(desired, live, state).plan
    assert [(c.address, c.action, c.protect) for c in plan.changes] == [(T("a"), Action.DELETE, True)]


def test_a_target_keeps_what_its_changes_depend_on() -> None:
    config = Resource(T("config"), {"v": 1}, flow="shared")
    train = Resource(T("train"), {"v": 1}, depends_on=(T("config"),), flow="train")
    other = Resource(T("other"), {"v": 1}, flow="other")
    plan = build([config, train, other], LiveState(), InventoryState(), PlanOptions(targets=("train",))).plan
    assert [c.address for c in plan.changes] == [T("config"), T("train")]
    assert plan.waves == ((T("config"),), (T("train"),))


def test_an_unknown_target_is_an_error_naming_the_flows() -> None:
    with pytest.raises(PlanError, match="neither a flow of the manifest nor a resource address"):
        build([Resource(T("a"), {})], LiveState(), InventoryState(), PlanOptions(targets=("nope",)))
