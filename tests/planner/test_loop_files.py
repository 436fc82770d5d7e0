"""The whole loop on one machine: plan, apply, plan = nothing, edit, plan; saved plans; guards.

Drives the real CLI against the files backend in a temporary directory.
Golden plan outputs live in tests/planner/golden/<case>/ (one folder per
case): ``edit.json`` says how the repository's flows.yaml is edited, and
``plan.txt`` / ``plan.md`` / ``plan.json`` are the expected plans after that
edit. ``FLOWPLAN_UPDATE_GOLDEN=1`` rewrites them (review the diff!).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backends import files as files_backend
from tests.planner.loop import Project, stable_json

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "edit.json").exists())
UPDATE = os.environ.get("FLOWPLAN_UPDATE_GOLDEN") == "1"


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans explain schedules with fire times counted from ``created_at``: fix it so goldens stay golden."""
    monkeypatch.setattr("planner.building.build._now", lambda: "2026-01-01T00:00:00Z")


@pytest.fixture
def applied(tmp_path: Path) -> Project:
    project = Project(tmp_path)
    result = project.run("apply", "--auto-approve")
    assert result.code == 0, result.err
    return project


def _check_golden(path: Path, actual: str) -> None:
    if UPDATE or not path.exists():
        path.write_text(actual)
    assert actual == path.read_text(), f"{path} differs; rerun with FLOWPLAN_UPDATE_GOLDEN=1 and review"


def test_first_plan_lists_every_resource_and_exits_2(tmp_path: Path) -> None:
    project = Project(tmp_path)
    result = project.run("plan", "--detailed-exitcode")
    assert result.code == 2, result.err
    assert "Plan: 13 to create, 0 to update, 0 to replace, 0 to delete." in result.out
    assert project.deployed() == []  # planning wrote nothing
    assert not (tmp_path / ".flowplan").exists()


def test_apply_then_plan_is_empty_and_second_apply_writes_nothing(
    applied: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(applied.deployed()) == 13
    result = applied.run("plan", "--detailed-exitcode")
    assert result.code == 0, result.out + result.err
    assert "No changes." in result.out

    locks: list[str] = []
    real_acquire = files_backend.FileLock.acquire

    def counting_acquire(self: files_backend.FileLock, info: object) -> None:
        locks.append(str(self.path))
        real_acquire(self, info)  # type: ignore[arg-type]

    monkeypatch.setattr(files_backend.FileLock, "acquire", counting_acquire)
    before = applied.snapshot()
    result = applied.run("apply", "--auto-approve")
    assert result.code == 0, result.err
    assert applied.snapshot() == before
    assert locks == []


def test_a_new_git_commit_alone_changes_nothing(applied: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLAN_GIT_COMMIT", "1" * 40)
    result = applied.run("plan", "--detailed-exitcode")
    assert result.code == 0, result.out


@pytest.mark.parametrize("case", CASES)
def test_single_edit_golden_plans(applied: Project, case: str) -> None:
    edit = json.loads((GOLDEN / case / "edit.json").read_text())
    for old, new in edit["replace"]:
        applied.edit(old, new)
    if "truncate_from" in edit:
        source = applied.manifest.read_text()
        applied.manifest.write_text(source[: source.index(edit["truncate_from"])] + "\n")
    args = edit.get("args", [])
    text = applied.run("plan", "--detailed-exitcode", *args)
    assert text.code == edit.get("exit", 2), text.err
    markdown = applied.run("plan", "--format", "markdown", *args)
    as_json = applied.run("plan", "--format", "json", *args)
    _check_golden(GOLDEN / case / "plan.txt", text.out)
    _check_golden(GOLDEN / case / "plan.md", markdown.out)
    _check_golden(GOLDEN / case / "plan.json", stable_json(as_json.out))
    planned = {c["address"] for c in json.loads(as_json.out)["changes"]}
    assert planned == set(edit["affects"]), "the plan must name exactly the affected resources"
    # applying converges: the next plan is empty
    assert applied.run("apply", "--auto-approve", *args).code == 0
    assert applied.run("plan", "--detailed-exitcode", *args).code == 0


def test_saved_plan_applies_exactly(applied: Project) -> None:
    applied.edit("30 2 * * *", "0 4 * * *")
    assert applied.run("plan", "--out", "plan.bin").code == 0
    shown = applied.run("show", "plan.bin")
    assert "0 4 * * *" in shown.out
    result = applied.run("apply", "plan.bin")
    assert result.code == 0, result.err
    assert "0 4 * * *" in (applied.root / "deploy/argo/cronworkflow/recsys-prod-train.yaml").read_text()
    assert applied.run("plan", "--detailed-exitcode").code == 0


def test_saved_plan_refused_after_out_of_band_edit(applied: Project) -> None:
    applied.edit("30 2 * * *", "0 4 * * *")
    assert applied.run("plan", "--out", "plan.bin").code == 0
    target = applied.root / "deploy/argo/cronworkflow/recsys-prod-train.yaml"
    target.write_text(target.read_text().replace("timezone: Europe/Berlin", "timezone: UTC"))
    before = applied.snapshot()
    result = applied.run("apply", "plan.bin")
    assert result.code == 1
    assert "stale" in result.err and "nothing was written" in result.err
    assert applied.snapshot() == before


def test_saved_plan_refused_after_manifest_change(applied: Project) -> None:
    applied.edit("30 2 * * *", "0 4 * * *")
    assert applied.run("plan", "--out", "plan.bin").code == 0
    applied.edit("0 4 * * *", "0 5 * * *")
    before = applied.snapshot()
    result = applied.run("apply", "plan.bin")
    assert result.code == 1
    assert "manifest_digest" in result.err
    assert applied.snapshot() == before


def test_saved_plan_refused_after_var_change(applied: Project) -> None:
    assert applied.run("plan", "--var", "image_tag=2026.12.0", "--out", "plan.bin").code == 0
    data = json.loads((applied.root / "plan.bin").read_text())
    data["payload"]["manifest_options"]["vars"] = [["image_tag", "2026.12.1"]]
    # re-sign so only the re-plan can catch it
    from planner.plan import plan_file_checksum

    data["checksum"] = plan_file_checksum(data["payload"])
    (applied.root / "plan.bin").write_text(json.dumps(data))
    before = applied.snapshot()
    result = applied.run("apply", "plan.bin")
    assert result.code == 1
    assert "vars_digest" in result.err
    assert applied.snapshot() == before


def test_hand_edited_plan_file_is_refused(applied: Project) -> None:
    applied.edit("30 2 * * *", "0 4 * * *")
    assert applied.run("plan", "--out", "plan.bin").code == 0
    path = applied.root / "plan.bin"
    path.write_text(path.read_text().replace("0 4 * * *", "0 6 * * *"))
    before = applied.snapshot()
    result = applied.run("apply", "plan.bin")
    assert result.code == 1
    assert "modified after flowplan wrote it" in result.err
    assert applied.snapshot() == before


def test_guard_stops_a_mass_delete(applied: Project) -> None:
    text = applied.manifest.read_text()
    head, _, _ = text.partition("\nflows:\n")
    applied.manifest.write_text(
        head + "\nflows:\n  only:\n    image: busybox\n    steps:\n      start: {command: [echo, hi]}\n"
    )
    before = applied.snapshot()
    result = applied.run("apply", "--auto-approve")
    assert result.code == 1
    assert "protected" in result.err or "safety threshold" in result.err
    assert applied.snapshot() == before


def test_guard_needs_allow_destroy_beyond_threshold(tmp_path: Path) -> None:
    flows = "\n".join(
        f"  f{i}:\n    image: busybox\n    schedule: {{cron: '0 {i % 24} * * *'}}\n"
        f"    steps:\n      start: {{command: [echo, '{i}']}}"
        for i in range(8)
    )
    manifest = tmp_path / "src.yaml"
    manifest.write_text(f"version: 1\nproject: demo\nflows:\n{flows}\n")
    project = Project(tmp_path, manifest)
    assert project.run("apply", "--auto-approve").code == 0
    # removing 6 flows deletes 12 objects: over the threshold of 10
    project.manifest.write_text(f"version: 1\nproject: demo\nflows:\n{flows.split('  f6:')[0].split('  f2:')[0]}\n")
    blocked = project.run("plan")
    assert blocked.code == 1 and "safety threshold of 10" in blocked.err
    allowed = project.run("apply", "--auto-approve", "--allow-destroy")
    assert allowed.code == 0, allowed.err
    assert len(project.deployed()) == 4


def test_destroy_removes_everything_owned_and_nothing_else(tmp_path: Path) -> None:
    manifest = tmp_path / "src.yaml"
    manifest.write_text(
        "version: 1\nproject: demo\nflows:\n  a:\n    image: x\n    steps:\n      start: {command: [a]}\n"
    )
    project = Project(tmp_path, manifest)
    assert project.run("apply", "--auto-approve").code == 0
    foreign = tmp_path / "deploy" / "argo" / "configmap" / "someone-else.yaml"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: someone-else}\n")
    result = project.run("destroy", "--auto-approve")
    assert result.code == 0, result.err
    assert project.deployed() == ["argo/configmap/someone-else.yaml"]


def test_protected_flow_is_never_deleted(applied: Project) -> None:
    text = applied.manifest.read_text()
    start = text.index("  train:\n")
    end = text.index("  report:\n")
    applied.manifest.write_text(text[:start] + text[end:])
    result = applied.run("plan")
    assert result.code == 1
    assert "protected" in result.err and "recsys-prod-train" in result.err


def test_conflict_with_a_foreign_file_is_reported_and_untouched(tmp_path: Path) -> None:
    project = Project(tmp_path)
    foreign = tmp_path / "deploy" / "argo" / "workflowtemplate" / "recsys-prod-report.yaml"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("# hand-written\napiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\n")
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "Conflicts" in plan.out and "recsys-prod-report" in plan.out
    result = project.run("apply", "--auto-approve")
    assert result.code == 1
    assert foreign.read_text().startswith("# hand-written")
    # the report's CronWorkflow depends on the template: skipped, not created
    assert not (tmp_path / "deploy/argo/cronworkflow/recsys-prod-report.yaml").exists()
    assert (tmp_path / "deploy/argo/workflowtemplate/recsys-prod-train.yaml").exists()


def test_apply_without_terminal_needs_auto_approve(tmp_path: Path) -> None:
    project = Project(tmp_path)
    result = project.run("apply")
    assert result.code == 1
    assert "--auto-approve" in result.err
    assert project.deployed() == []


def test_target_limits_the_plan_to_one_flow(tmp_path: Path) -> None:
    project = Project(tmp_path)
    result = project.run("plan", "--target", "report", "--format", "json")
    addresses = {c["address"] for c in json.loads(result.out)["changes"]}
    assert addresses == {
        "local.CronWorkflow.argo/recsys-prod-report",
        "local.WorkflowTemplate.argo/recsys-prod-report",
        "local.ConfigMap.argo/recsys-prod-sink-warehouse",
    }


def test_graph_prints_dot(tmp_path: Path) -> None:
    result = Project(tmp_path).run("graph")
    assert result.code == 0
    assert result.out.startswith("digraph flowplan {")
    assert (
        '"local.WorkflowTemplate.argo/recsys-prod-train" -> "local.CronWorkflow.argo/recsys-prod-train"' in result.out
    )


def test_lock_held_by_another_process_stops_apply(tmp_path: Path) -> None:
    project = Project(tmp_path)
    lock = tmp_path / ".flowplan" / "local" / "recsys.prod.lock"
    lock.parent.mkdir(parents=True)
    import time

    lock.write_text(
        json.dumps(
            {
                "holder": "alice",
                "host": "ci-7",
                "pid": 4242,
                "acquired_at": time.time(),
                "expires_at": time.time() + 600,
            }
        )
    )
    result = project.run("apply", "--auto-approve")
    assert result.code == 1
    assert "alice on host ci-7 (pid 4242" in result.err
    assert project.deployed() == []
    assert project.run("force-unlock", "--yes").code == 0
    assert not lock.exists()
    assert project.run("apply", "--auto-approve").code == 0


def test_expired_lock_is_taken_over(tmp_path: Path) -> None:
    project = Project(tmp_path)
    lock = tmp_path / ".flowplan" / "local" / "recsys.prod.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"holder": "bob", "host": "h", "pid": 1, "acquired_at": 1, "expires_at": 2}))
    assert project.run("apply", "--auto-approve").code == 0


def test_protect_guards_production_only(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve", "--branch", "pr-7").code == 0
    result = project.run("destroy", "--auto-approve", "--branch", "pr-7")
    assert result.code == 0, result.err
    assert project.deployed() == []
