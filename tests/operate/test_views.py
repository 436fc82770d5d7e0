"""The pure parts: rollback resources from recorded bodies (sensitive values, dependencies, markers),
history, branch ages and pruning, and the status view's clock-dependent parts with a fixed clock."""

from __future__ import annotations

import base64
import datetime
import shutil
import zlib
from pathlib import Path
from typing import Any

import pytest

from backends.registry import OpenOptions, open_backend
from planner.branches import age_text, branches_view, parse_age, prune_candidates
from planner.building import PlanOptions, build_plan
from planner.contract import BranchInfo, InventoryState, Revision, Run, Scope, TriggerHealth
from planner.errors import FlowplanError, PlanError
from planner.history import history_view, render_history_markdown
from planner.manifest import load_manifest
from planner.resources import Address, Provenance, Resource, canonical_json
from planner.rollback import restore_resources, sensitive_digest
from planner.status import duration_text, render_status_markdown, render_status_text, status_view

REPO = Path(__file__).resolve().parents[2]
UTC = datetime.UTC
TEMPLATE = Address("cluster", "WorkflowTemplate", "ml", "p-prod-a")
CRON = Address("cluster", "CronWorkflow", "ml", "p-prod-a")
OTHER = Address("cluster", "WorkflowTemplate", "ml", "p-prod-a-b")
MARKERS = {"flowplan.dev/version": "0.0.1", "flowplan.dev/manifest-digest": "old", "flowplan.dev/spec-hash": "h"}


def _revision(bodies: dict[str, Any], number: int = 1, digest: str = "d1") -> Revision:
    packed = base64.b64encode(zlib.compress(canonical_json(bodies).encode())).decode()
    return Revision(number, "2026-01-01T00:00:00Z", "ci", "c" * 40, digest, "0.0.1", {"create": 1}, (), packed)


def _template(name: str, secret: str, flow: str = "a") -> dict[str, Any]:
    return {
        "kind": "WorkflowTemplate",
        "metadata": {"name": name, "labels": {"flowplan.dev/flow": flow}, "annotations": dict(MARKERS)},
        "spec": {"env": [{"name": "TOKEN", "value": secret}]},
    }


def _cron(template: str) -> dict[str, Any]:
    return {
        "kind": "CronWorkflow",
        "metadata": {"name": "p-prod-a", "labels": {}, "annotations": dict(MARKERS)},
        "spec": {"workflowSpec": {"workflowTemplateRef": {"name": template}}},
    }


def _current(secret: str) -> list[Resource]:
    """What the manifest compiles to now: the template (with ``secret``) and a cron that depends on it."""
    volatile = tuple(f"/metadata/annotations/{k.replace('/', '~1')}" for k in MARKERS)
    return [
        Resource(
            TEMPLATE,
            _template(TEMPLATE.name, secret),
            flow="a",
            volatile_paths=volatile,
            sensitive_paths=("/spec/env/0/value",),
        ),
        Resource(CRON, _cron(TEMPLATE.name), depends_on=(TEMPLATE,), flow="a", volatile_paths=volatile, fires=True),
    ]


HIDDEN = f"(sensitive sha256:{sensitive_digest('s3cret')})"
PROVENANCE = Provenance("9.9.9", "d1", "c" * 40)


def test_a_sensitive_value_comes_back_from_the_manifest_when_its_hash_matches() -> None:
    revision = _revision({str(TEMPLATE): _template(TEMPLATE.name, HIDDEN), str(CRON): _cron(TEMPLATE.name)})
    restored = {r.address: r for r in restore_resources(revision, "cluster", _current("s3cret"), PROVENANCE)}
    assert restored[TEMPLATE].body["spec"]["env"][0]["value"] == "s3cret"
    assert restored[TEMPLATE].sensitive_paths == ("/spec/env/0/value",)
    assert restored[TEMPLATE].body["metadata"]["annotations"]["flowplan.dev/version"] == "9.9.9"
    assert restored[TEMPLATE].body["metadata"]["annotations"]["flowplan.dev/spec-hash"] == "h"  # recorded one
    assert restored[CRON].depends_on == (TEMPLATE,) and restored[CRON].fires


def test_a_sensitive_value_comes_back_from_the_live_object_or_the_rollback_refuses() -> None:
    revision = _revision({str(TEMPLATE): _template(TEMPLATE.name, HIDDEN)})
    asked: list[list[Address]] = []

    def live(addresses: Any) -> dict[Address, dict[str, Any]]:
        asked.append(list(addresses))
        return {TEMPLATE: _template(TEMPLATE.name, "s3cret")}

    (restored,) = restore_resources(revision, "cluster", _current("rotated"), PROVENANCE, live)
    assert restored.body["spec"]["env"][0]["value"] == "s3cret" and asked == [[TEMPLATE]]

    with pytest.raises(PlanError) as refused:
        restore_resources(revision, "cluster", _current("rotated"), PROVENANCE, lambda a: {})
    text = refused.value.render()
    assert f"{TEMPLATE} at /spec/env/0/value" in text and "--var" in text
    assert "s3cret" not in text and "rotated" not in text


def test_objects_only_the_revision_knows_get_dependencies_from_the_names_their_bodies_use() -> None:
    cron = Address("cluster", "CronWorkflow", "ml", "p-prod-a-b")
    bodies = {str(OTHER): _template(OTHER.name, "x", flow="a-b"), str(cron): _cron(OTHER.name)}
    restored = {r.address: r for r in restore_resources(_revision(bodies), "cluster", _current("s"), PROVENANCE)}
    # the cron names the template; the template (an earlier kind) depends on nothing; markers found in the body
    assert restored[cron].depends_on == (OTHER,) and restored[OTHER].depends_on == ()
    assert restored[OTHER].flow == "a-b" and restored[cron].flow == "a-b"  # the cron's flow: what it starts
    assert "/metadata/annotations/flowplan.dev~1version" in restored[OTHER].volatile_paths
    assert restored[OTHER].notes == ("as applied in revision 1",)
    assert restored[cron].toggle is None and restored[cron].fires  # like the current CronWorkflow


def test_history_marks_a_return_to_an_earlier_manifest_and_filters_by_flow() -> None:
    bodies = {str(TEMPLATE): _template(TEMPLATE.name, "x"), str(OTHER): _template(OTHER.name, "y", flow="b")}
    revisions = [
        _revision(bodies, 1, "d1"),
        Revision(2, "t2", "ci", None, "d2", "0.0.1", {"update": 1}, ({"address": str(OTHER), "action": "update"},)),
        Revision(3, "t3", "ci", None, "d1", "0.0.1", {"update": 1}, ({"address": str(OTHER), "action": "update"},)),
    ]
    view = history_view({"cluster": InventoryState({}, revisions)}, project="p", branch="prod")
    rows = view["backends"]["cluster"]
    assert [(r["number"], r["same_manifest_as"], r["bodies_kept"]) for r in rows] == [
        (3, 1, False),
        (2, None, False),
        (1, None, True),
    ]
    only_b = history_view({"cluster": InventoryState({}, revisions)}, project="p", branch="prod", flow="b")
    assert [r["number"] for r in only_b["backends"]["cluster"]] == [3, 2]  # revision 1 touched no object of b
    assert "| 3 | t3 | ci | `-` | `d1` | 0.0.1 | 1 updated (manifest of #1) |" in render_history_markdown(view)


def test_ages_and_what_prune_picks() -> None:
    assert parse_age("14d") == datetime.timedelta(days=14) and parse_age(" 2w ") == datetime.timedelta(days=14)
    assert parse_age("36h") == datetime.timedelta(hours=36) and parse_age("90m") == datetime.timedelta(minutes=90)
    for bad in ("14", "0d", "1y", "-3d", ""):
        with pytest.raises(FlowplanError):
            parse_age(bad)
    assert (age_text(None), age_text(59), age_text(3 * 3600 + 120), age_text(90000)) == (
        "unknown",
        "0m",
        "3h 02m",
        "1d 1h",
    )
    now = datetime.datetime(2026, 6, 30, tzinfo=UTC)

    def info(branch: str, days: int | None) -> BranchInfo:
        last = None
        if days is not None:
            when = (now - datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
            last = Revision(1, when, "ci", None, "d", "0", {})
        return BranchInfo("k8s", branch, 3, 3, last, last is not None)

    view = branches_view(
        {"k8s": [info("pr-1", 20), info("prod", 90), info("pr-2", 2), info("pr-3", None)]}, project="p", now=now
    )
    assert [r["branch"] for r in view["backends"]["k8s"]] == ["prod", "pr-1", "pr-2", "pr-3"]
    assert prune_candidates(view, datetime.timedelta(days=14)) == [("k8s", "pr-1")]
    assert prune_candidates(view, datetime.timedelta(days=1)) == [("k8s", "pr-1"), ("k8s", "pr-2")]


def test_status_fire_times_follow_the_time_zone_across_a_dst_change(tmp_path: Path) -> None:
    shutil.copy(REPO / "flows.yaml", tmp_path / "flows.yaml")
    manifest = load_manifest(tmp_path / "flows.yaml")
    provenance = Provenance("0", manifest.digest)
    backends = {
        name: open_backend(spec, OpenOptions(tmp_path, Scope(name, manifest.project, manifest.branch), provenance))
        for name, spec in manifest.backends.items()
    }
    result = build_plan(manifest, backends, provenance, PlanOptions(mode="refresh-only"))
    # Saturday before the spring-forward night in Berlin: 02:30 does not exist on Sunday 2027-03-28
    now = datetime.datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    runs = {
        "local": {
            "train": [
                Run("train", "t-2", "running", "2027-03-27T11:00:00Z"),
                Run("train", "t-1", "failed", "2027-03-26T01:30:00Z", "2027-03-26T03:00:05Z", "Failed"),
            ]
        }
    }
    health = {"local": {"train": [TriggerHealth("train", "schedule", "x", "suspended", True)]}}
    view = status_view(manifest, result, flows=["train"], runs=runs, health=health, now=now)
    (train,) = view["flows"]
    assert train["schedule"]["next"] == [
        "2027-03-29T02:30:00+02:00",
        "2027-03-30T02:30:00+02:00",
        "2027-03-31T02:30:00+02:00",
    ]
    # not deployed: the manifest's word on suspension counts, not the live object's
    assert (train["schedule"]["suspended"], train["schedule"]["suspended_from"]) == (False, "manifest")
    assert [r["duration_seconds"] for r in train["runs"]] == [3600, 5405]
    assert view["alerts"] == ["train: not deployed", "train: last run failed (t-1)"]
    text = render_status_text(view)
    assert "running   t-2  started 2027-03-27 11:00:00Z  running for 1h 00m" in text
    assert "FAILED    t-1  started 2027-03-26 01:30:00Z  took 1h 30m  (Failed)" in text
    assert "next Mon 2027-03-29 02:30, Tue 2027-03-30 02:30, Wed 2027-03-31 02:30 Europe/Berlin" in text
    assert "| `train` | local | **no** | not deployed | At 02:30 AM | Mon 2027-03-29 02:30 Europe/Berlin |" in (
        render_status_markdown(view)
    )
    assert (duration_text(None), duration_text(5), duration_text(61), duration_text(7322)) == (
        "-",
        "5s",
        "1m 01s",
        "2h 02m",
    )
