"""The one ResourceChange constructor: which side each field comes from."""

from __future__ import annotations

from planner.building.change import resource_change
from planner.plan import Action, Cause
from planner.resources import Address, FieldManager, LiveResource, Owner, Resource, Toggle

ADDRESS = Address("mem", "CronWorkflow", "ns", "nightly")
DESIRED = Resource(
    ADDRESS,
    {"spec": {"suspend": False}},
    depends_on=(Address("mem", "WorkflowTemplate", "ns", "t"),),
    flow="train",
    sensitive_paths=("/spec/token",),
    notes=("a note",),
    fires=True,
    toggle=Toggle("/spec/suspend", False, True),
)
LIVE = LiveResource(
    ADDRESS,
    {"spec": {"suspend": True}},
    "42",
    Owner("proj", "main", "old-flow"),
    managers=(FieldManager("kubectl", "Update"),),
    meta={"uid": "u"},
    protected=True,
)


def test_a_create_takes_everything_from_the_desired_side() -> None:
    change = resource_change(Action.CREATE, Cause.MANIFEST, DESIRED, None)
    assert (change.before, change.after, change.live_version, change.managers) == (None, DESIRED.body, None, ())
    assert (change.flow, change.depends_on, change.notes, change.fires) == (
        "train",
        DESIRED.depends_on,
        ("a note",),
        True,
    )
    assert change.toggle == ("/spec/suspend", False, True)
    assert change.protect is False


def test_an_update_takes_the_live_side_s_body_version_and_managers() -> None:
    change = resource_change(Action.UPDATE, Cause.DRIFT, DESIRED, LIVE, after={"x": 1}, drifted=True)
    assert (change.before, change.after, change.live_version) == (LIVE.body, {"x": 1}, "42")
    assert change.live_meta == {"uid": "u"} and change.managers == ({"manager": "kubectl", "operation": "Update"},)
    assert change.flow == "train"  # the manifest's flow, not the one the live markers name
    assert change.protect is False  # protection follows the manifest while the resource is desired


def test_a_delete_takes_flow_and_protection_from_the_live_markers() -> None:
    change = resource_change(Action.DELETE, Cause.ORPHAN, None, LIVE, reason="gone")
    assert (change.address, change.after, change.flow, change.protect) == (ADDRESS, None, "old-flow", True)
    assert (change.depends_on, change.toggle, change.sensitive_paths) == ((), None, ())
