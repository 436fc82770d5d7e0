"""Drift and ignore rules on the files backend, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.planner.loop import Project

CRON = "deploy/argo/cronworkflow/recsys-prod-train.yaml"
SENSOR = "deploy/argo/sensor/recsys-prod-features.yaml"


@pytest.fixture
def applied(tmp_path: Path) -> Project:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    return project


def _edit(project: Project, rel: str, old: str, new: str) -> None:
    path = project.root / rel
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new, 1))


def _drift(project: Project) -> tuple[int, dict[str, object]]:
    result = project.run("drift", "--format", "json")
    return result.code, json.loads(result.out) if result.out else {}


def test_in_sync_after_apply(applied: Project) -> None:
    code, report = _drift(applied)
    assert code == 0 and report["in_sync"] is True


def test_each_kind_of_out_of_band_change_is_classified(applied: Project) -> None:
    _edit(applied, CRON, "concurrencyPolicy: Forbid", "concurrencyPolicy: Allow")  # a field the manifest sets
    _edit(
        applied, "deploy/argo/cronworkflow/recsys-prod-report.yaml", "spec:\n", "spec:\n  failedJobsHistoryLimit: 9\n"
    )
    (applied.root / SENSOR).unlink()  # deleted outside
    # a look-alike, unowned, where flowplan wants to write (after deleting ours by hand)
    lookalike = applied.root / "deploy/argo/configmap/recsys-prod-sink-feature-cache.yaml"
    lookalike.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: recsys-prod-sink-feature-cache\n")
    code, report = _drift(applied)
    assert code == 2
    kinds = {item["address"]: item["kind"] for item in report["drift"]}  # type: ignore[attr-defined]
    assert kinds == {
        "local.CronWorkflow.argo/recsys-prod-train": "changed",
        "local.CronWorkflow.argo/recsys-prod-report": "changed",
        "local.Sensor.argo/recsys-prod-features": "deleted",
        "local.ConfigMap.argo/recsys-prod-sink-feature-cache": "conflict",
    }
    fields = {
        item["address"]: item["fields"]
        for item in report["drift"]  # type: ignore[attr-defined]
    }
    assert fields["local.CronWorkflow.argo/recsys-prod-train"] == [
        {"path": "/spec/concurrencyPolicy", "kind": "changed", "desired": "Forbid", "live": "Allow"}
    ]
    assert fields["local.CronWorkflow.argo/recsys-prod-report"] == [
        {"path": "/spec/failedJobsHistoryLimit", "kind": "added", "live": 9}
    ]
    text = applied.run("drift")
    assert text.code == 2 and "deleted outside flowplan" in text.out
    # apply restores what it can; the look-alike stays untouched and remains a conflict
    lookalike_text = lookalike.read_text()
    applied.run("apply", "--auto-approve")
    assert lookalike.read_text() == lookalike_text
    lookalike.unlink()
    assert applied.run("apply", "--auto-approve").code == 0
    code, report = _drift(applied)
    assert code == 0, report


def test_suspend_added_by_hand_is_drift(applied: Project) -> None:
    _edit(applied, CRON, "suspend: false", "suspend: true")
    code, report = _drift(applied)
    assert code == 2
    assert report["drift"][0]["fields"] == [  # type: ignore[index]
        {"path": "/spec/suspend", "kind": "changed", "desired": False, "live": True}
    ]
    plan = applied.run("plan")
    assert "Changed outside flowplan (drift):" in plan.out


def test_pending_manifest_change_is_not_drift(applied: Project) -> None:
    applied.edit("30 2 * * *", "0 4 * * *")
    code, report = _drift(applied)
    assert code == 0 and report["pending_manifest_changes"] == 1


def test_ignore_rule_silences_exactly_its_pointer_and_apply_keeps_the_live_value(applied: Project) -> None:
    applied.edit("    protect: true\n", '    protect: true\n    ignore_changes: ["CronWorkflow:/spec/suspend"]\n')
    assert applied.run("apply", "--auto-approve").code == 0
    _edit(applied, CRON, "suspend: false", "suspend: true")  # an operator pauses the schedule
    code, report = _drift(applied)
    assert code == 0, report
    assert report["ignored_differences"] == 1
    plan = applied.run("plan", "--detailed-exitcode")
    assert plan.code == 0 and "1 difference(s) ignored" in plan.out
    # a real change elsewhere in the same object is still planned, and the pause survives the apply
    applied.edit("30 2 * * *", "0 4 * * *")
    plan = applied.run("plan", "--format", "json")
    diffs = json.loads(plan.out)["changes"][0]["field_diffs"]
    assert [d["path"] for d in diffs] == ["/spec/schedules/0"]
    assert applied.run("apply", "--auto-approve").code == 0
    deployed = (applied.root / CRON).read_text()
    assert "suspend: true" in deployed and "0 4 * * *" in deployed
    # the other pointer is not ignored
    _edit(applied, CRON, "timezone: Europe/Berlin", "timezone: UTC")
    code, _ = _drift(applied)
    assert code == 2


def test_drift_takes_no_lock_and_writes_nothing(applied: Project) -> None:
    _edit(applied, CRON, "suspend: false", "suspend: true")
    before = applied.snapshot()
    applied.run("drift")
    assert applied.snapshot() == before
