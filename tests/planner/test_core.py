"""Unit tests for the pure core: pointers, hashing, diff, plan JSON round trip, redaction (order: test_graph)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from planner.contract import InventoryEntry, InventoryState, LockInfo, Revision
from planner.diff import comparison_hash, field_diffs, ignored_pointers, is_sensitive, keep_live_values
from planner.manifest import IgnoreRule
from planner.plan import ABSENT, Action, Cause, Conflict, FieldDiff, Plan, PlanInputs, ResourceChange, redact_values
from planner.render import render_json, render_markdown, render_text
from planner.resources import (
    Address,
    delete_pointer,
    get_pointer,
    join_pointer,
    set_pointer,
    spec_hash,
    split_pointer,
    without,
)


def A(kind: str, name: str, backend: str = "b") -> Address:
    return Address(backend, kind, "ns", name)


# --------------------------------------------------------------------------- pointers and hashes


def test_pointer_round_trip_with_escapes() -> None:
    parts = ["metadata", "labels", "flowplan.dev/flow", "a~b"]
    pointer = join_pointer(parts)
    assert pointer == "/metadata/labels/flowplan.dev~1flow/a~0b"
    assert split_pointer(pointer) == parts


def test_set_get_delete_pointer() -> None:
    body: dict[str, object] = {"spec": {"list": [1, 2]}}
    set_pointer(body, "/spec/new/deep", 3)
    set_pointer(body, "/spec/list/2", 9)
    assert get_pointer(body, "/spec/new/deep") == 3
    assert get_pointer(body, "/spec/list") == [1, 2, 9]
    delete_pointer(body, "/spec/list/0")
    assert get_pointer(body, "/spec/list") == [2, 9]
    assert get_pointer(body, "/nope", None) is None
    with pytest.raises(KeyError):
        get_pointer(body, "/nope")


def test_without_prunes_only_what_the_removal_emptied() -> None:
    body = {"metadata": {"annotations": {"x": "1"}, "labels": {}}, "spec": {"a": 1}}
    out = without(body, ["/metadata/annotations/x"])
    assert out == {"metadata": {"labels": {}}, "spec": {"a": 1}}
    assert body["metadata"]["annotations"] == {"x": "1"}  # original untouched


def test_spec_hash_ignores_excluded_pointers_only() -> None:
    a = {"spec": {"x": 1}, "metadata": {"annotations": {"v": "1"}}}
    b = {"spec": {"x": 1}, "metadata": {"annotations": {"v": "2"}}}
    assert spec_hash(a, ["/metadata/annotations/v"]) == spec_hash(b, ["/metadata/annotations/v"])
    assert spec_hash(a) != spec_hash(b)
    assert spec_hash({"a": 1, "b": 2}) == spec_hash({"b": 2, "a": 1})


def test_address_parse_and_order() -> None:
    address = Address.parse("prod.CronWorkflow.ml-prod/recsys-prod-train")
    assert address == Address("prod", "CronWorkflow", "ml-prod", "recsys-prod-train")
    assert str(address) == "prod.CronWorkflow.ml-prod/recsys-prod-train"
    with pytest.raises(ValueError, match=r"backend\.Kind\.namespace/name"):
        Address.parse("nonsense")
    names = sorted([A("Sensor", "a"), A("ConfigMap", "z"), A("ConfigMap", "b")], key=Address.sort_key)
    assert [str(n) for n in names] == ["b.ConfigMap.ns/b", "b.ConfigMap.ns/z", "b.Sensor.ns/a"]


# --------------------------------------------------------------------------- diff


def test_field_diffs_are_leaf_pointers_sorted_numerically() -> None:
    before = {"l": list(range(12)), "m": {"x": 1}, "gone": True}
    after = {"l": [*range(10), 99, 11], "m": {"x": 2, "y": 3}}
    diffs = field_diffs(before, after)
    assert [(d.path, d.kind) for d in diffs] == [
        ("/gone", "removed"),
        ("/l/10", "changed"),
        ("/m/x", "changed"),
        ("/m/y", "added"),
    ]
    assert diffs[0].after is ABSENT and diffs[3].before is ABSENT


def test_sensitive_flag_covers_parents_and_children() -> None:
    sensitive = ["/spec/env/0/value"]
    assert is_sensitive("/spec/env/0/value", sensitive)
    assert is_sensitive("/spec/env", sensitive)  # a whole list containing it
    assert not is_sensitive("/spec/env/1/value", sensitive)
    diffs = field_diffs({"spec": {"env": [{"value": "a"}]}}, {"spec": {"env": [{"value": "b"}]}}, sensitive)
    assert diffs[0].sensitive
    assert diffs[0].to_json() == {
        "path": "/spec/env/0/value",
        "kind": "changed",
        "before": "(sensitive)",
        "after": "(sensitive)",
        "sensitive": True,
    }


def test_ignored_pointers_match_kind_or_star() -> None:
    rules = [IgnoreRule("CronWorkflow", "/spec/suspend"), IgnoreRule("*", "/metadata/labels/team")]
    assert ignored_pointers(A("CronWorkflow", "x"), rules) == ("/metadata/labels/team", "/spec/suspend")
    assert ignored_pointers(A("Sensor", "x"), rules) == ("/metadata/labels/team",)


def test_keep_live_values_at_ignored_pointers() -> None:
    desired = {"spec": {"suspend": False, "schedule": "b"}}
    live = {"spec": {"suspend": True, "schedule": "a"}}
    assert keep_live_values(desired, live, ["/spec/suspend"]) == {"spec": {"suspend": True, "schedule": "b"}}
    assert keep_live_values(desired, {"spec": {}}, ["/spec/suspend"]) == {"spec": {"schedule": "b"}}
    assert comparison_hash(desired, ["/spec/suspend", "/spec/schedule"]) == comparison_hash(
        live, ["/spec/suspend", "/spec/schedule"]
    )


# --------------------------------------------------------------------------- plan and rendering


def _plan(secret: str = "s3cr3t-value") -> Plan:
    address = A("WorkflowTemplate", "t")
    change = ResourceChange(
        address=address,
        action=Action.UPDATE,
        cause=Cause.DRIFT,
        before={"spec": {"env": [{"name": "TOKEN", "value": "old"}], "image": "a"}},
        after={"spec": {"env": [{"name": "TOKEN", "value": secret}], "image": f"b-{secret}"}},
        field_diffs=(
            FieldDiff("/spec/env/0/value", "old", secret, sensitive=True),
            FieldDiff("/spec/image", "a", f"b-{secret}"),
        ),
        drifted=True,
        flow="f",
        sensitive_paths=("/spec/env/0/value",),
    )
    inputs = PlanInputs("p", "prod", "d1", "d2", ("b",), "0.1.0")
    return Plan(
        changes=(change,),
        waves=((address,),),
        inputs=inputs,
        live_fingerprint="fp",
        created_at="2026-01-01T00:00:00Z",
        conflicts=(Conflict(A("Sensor", "x"), "not managed by flowplan", "taken"),),
        sensitive_values=frozenset({secret}),
    )


def test_plan_json_round_trip_keeps_everything() -> None:
    plan = _plan()
    again = Plan.from_json(json.loads(json.dumps(plan.to_json(redact=False, bodies=True))))
    assert again == plan
    assert again.change_set_digest() == plan.change_set_digest()


def test_shown_plan_leaves_out_bodies_and_masks_sensitive_diffs() -> None:
    shown = _plan().to_json()
    change = shown["changes"][0]
    assert "before" not in change and "live_version" not in change and "toggle" not in change
    assert (change["backend"], change["kind"], change["namespace"], change["name"]) == (
        "b",
        "WorkflowTemplate",
        "ns",
        "t",
    )
    assert change["field_diffs"][0] == {
        "path": "/spec/env/0/value",
        "kind": "changed",
        "before": "(sensitive)",
        "after": "(sensitive)",
        "sensitive": True,
    }
    assert "sensitive" not in change["field_diffs"][1]
    assert "sensitive_values" not in shown and shown["summary"]["update"] == 1


def test_field_diff_sides_that_do_not_exist_stay_absent_through_json() -> None:
    added = FieldDiff("/spec/x", ABSENT, 1)
    data = added.to_json()
    assert data == {"path": "/spec/x", "kind": "added", "after": 1}
    assert FieldDiff.from_json(data).before is ABSENT


def test_unchanged_count_is_read_back_from_the_summary() -> None:
    plan = replace(_plan(), unchanged=7)
    data = plan.to_json(redact=False, bodies=True)
    assert "unchanged" not in data and data["summary"]["unchanged"] == 7
    assert Plan.from_json(data).unchanged == 7


def test_saved_plan_without_a_format_version_is_refused() -> None:
    data = _plan().to_json(redact=False, bodies=True)
    del data["format_version"]
    with pytest.raises(KeyError):
        Plan.from_json(data)


def test_inventory_json_keeps_its_names_omissions_and_sorted_entries() -> None:
    state = InventoryState(
        {A("Sensor", "z"): InventoryEntry("h1"), A("ConfigMap", "a"): InventoryEntry("h2", "pending-create", "f")},
        [Revision(1, "t", "me", None, "md", "0.1", {"create": 2})],
        version="v7",
    )
    data = state.to_json()
    assert data == {
        "entries": {
            "b.ConfigMap.ns/a": {"hash": "h2", "state": "pending-create", "flow": "f"},
            "b.Sensor.ns/z": {"hash": "h1", "state": "applied"},
        },
        "revisions": [
            {
                "number": 1,
                "time": "t",
                "who": "me",
                "git_commit": None,
                "manifest_digest": "md",
                "flowplan_version": "0.1",
                "summary": {"create": 2},
                "changes": [],
            }
        ],
        "format": 1,
    }
    assert list(data["entries"]) == ["b.ConfigMap.ns/a", "b.Sensor.ns/z"]
    again = InventoryState.from_json(json.loads(json.dumps(data)), "v8")
    assert again.version == "v8" and dict(again.entries) == dict(state.entries)
    assert list(again.revisions) == [replace(state.revisions[0], changes=[])]


def test_lock_and_revision_json_fill_in_what_a_hand_edit_left_out() -> None:
    assert LockInfo.from_json({"pid": "12"}) == LockInfo("?", "?", 12)
    assert Revision.from_json({}) == Revision(0, "", "", None, "", "", {}, [])
    assert InventoryEntry.from_json({}) == InventoryEntry("")


def test_change_set_digest_moves_with_the_live_version() -> None:
    plan = _plan()
    moved = replace(plan, changes=(replace(plan.changes[0], live_version="42"),))
    assert moved.change_set_digest() != plan.change_set_digest()


@pytest.mark.parametrize("render", [render_text, render_markdown, render_json])
def test_no_renderer_leaks_a_sensitive_value(render: object) -> None:
    out = render(_plan())  # type: ignore[operator]
    assert "s3cr3t-value" not in out
    assert "(sensitive)" in out


def test_redacted_json_has_no_secret_anywhere() -> None:
    text = json.dumps(_plan().to_json(redact=True, bodies=True))
    assert "s3cr3t-value" not in text


def test_redact_values_replaces_inside_strings_and_keys() -> None:
    data = {"a": ["x-TOP-y"], "TOP": 1}
    assert redact_values(data, {"TOP"}) == {"a": ["x-(sensitive)-y"], "(sensitive)": 1}


def test_text_render_shows_symbols_diffs_and_summary() -> None:
    text = render_text(_plan())
    assert "~ b.WorkflowTemplate.ns/t" in text
    assert '~ spec.image: "a" -> "b-(sensitive)"' in text
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete." in text
    assert "Changed outside flowplan (drift):" in text
    assert "Conflicts" in text


def test_markdown_has_marker_summary_and_diff_block() -> None:
    md = render_markdown(_plan())
    assert md.startswith("<!-- flowplan-plan: p/prod -->\n")
    assert '\n- spec.image: "a"\n+ spec.image: "b-(sensitive)"\n```' in md
    assert "| `~` | update | `b.WorkflowTemplate.ns/t` | f |" in md
