"""Renames (moved:) and adoption on the files backend, through the CLI.

The crash test kills a real apply (in a child process) after every possible
number of writes and checks that two schedules are never enabled at once and
that a rerun finishes the move.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.planner.loop import REPO, Project

OLD_CRON = "deploy/argo/cronworkflow/recsys-prod-report.yaml"
NEW_CRON = "deploy/argo/cronworkflow/recsys-prod-weekly-report.yaml"
OLD_TEMPLATE = "deploy/argo/workflowtemplate/recsys-prod-report.yaml"
NEW_TEMPLATE = "deploy/argo/workflowtemplate/recsys-prod-weekly-report.yaml"


def _rename(project: Project) -> None:
    project.edit("\n  report:\n", "\n  weekly_report:\n")
    project.manifest.write_text(project.manifest.read_text() + "\nmoved:\n  - {from: report, to: weekly_report}\n")


@pytest.fixture
def applied(tmp_path: Path) -> Project:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    return project


def _suspended(path: Path) -> bool:
    text = path.read_text()
    body = yaml.safe_load(text[text.index("\napiVersion") :])
    return bool(body["spec"]["suspend"])


def test_rename_plans_one_move_per_resource(applied: Project) -> None:
    _rename(applied)
    plan = json.loads(applied.run("plan", "--format", "json").out)
    actions = {c["address"]: (c["action"], c["moved_from"]) for c in plan["changes"]}
    assert actions == {
        "local.WorkflowTemplate.argo/recsys-prod-weekly-report": (
            "move",
            "local.WorkflowTemplate.argo/recsys-prod-report",
        ),
        "local.CronWorkflow.argo/recsys-prod-weekly-report": ("move", "local.CronWorkflow.argo/recsys-prod-report"),
    }
    text = applied.run("plan").out
    assert "-> local.CronWorkflow.argo/recsys-prod-weekly-report" in text
    assert "2 to move" in text
    result = applied.run("apply", "--auto-approve")
    assert result.code == 0, result.err
    assert not (applied.root / OLD_CRON).exists() and not (applied.root / OLD_TEMPLATE).exists()
    assert (applied.root / NEW_CRON).exists() and (applied.root / NEW_TEMPLATE).exists()
    assert applied.run("plan", "--detailed-exitcode").code == 0


def test_a_paused_schedule_stays_paused_through_the_move(applied: Project) -> None:
    old = applied.root / OLD_CRON
    old.write_text(old.read_text().replace("suspend: false", "suspend: true"))
    _rename(applied)
    assert applied.run("apply", "--auto-approve").code == 0
    assert _suspended(applied.root / NEW_CRON)


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from backends import files
    limit = int(sys.argv[1])
    count = [0]
    def killing(method):
        def wrapper(self, *args):
            result = method(self, *args)
            count[0] += 1
            if count[0] >= limit:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper
    for name in ("create", "update", "delete"):
        setattr(files.FilesWriter, name, killing(getattr(files.FilesWriter, name)))
    from planner.cli import main
    main(["apply", "--auto-approve"])
    """
)


def _enabled_crons(root: Path) -> list[str]:
    folder = root / "deploy" / "argo" / "cronworkflow"
    return sorted(p.name for p in folder.glob("*report*.yaml") if not _suspended(p))


@pytest.mark.parametrize("kill_after", [1, 2, 3, 4])
def test_rename_interrupted_at_every_write_never_enables_two_schedules(applied: Project, kill_after: int) -> None:
    _rename(applied)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(kill_after)], cwd=applied.root, env=env, capture_output=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert len(_enabled_crons(applied.root)) <= 1
    # the lock of the killed run is left behind; it names its holder and is removed by force-unlock
    held = applied.run("apply", "--auto-approve")
    if held.code != 0:
        assert "is held by" in held.err
        assert applied.run("force-unlock", "--yes").code == 0
        held = applied.run("apply", "--auto-approve")
    assert held.code == 0, held.err
    assert _enabled_crons(applied.root) == ["recsys-prod-weekly-report.yaml"]
    assert not (applied.root / OLD_TEMPLATE).exists()
    assert applied.run("plan", "--detailed-exitcode").code == 0


def test_adopt_takes_over_an_unowned_object_at_a_desired_name(tmp_path: Path) -> None:
    project = Project(tmp_path)
    existing = tmp_path / OLD_CRON
    existing.parent.mkdir(parents=True)
    existing.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata:\n  name: recsys-prod-report\n"
        "  namespace: argo\n  annotations:\n    metaflow/flow_name: ReportFlow\nspec:\n  schedules: ['0 7 * * 1']\n"
    )
    plain = project.run("plan", "--format", "json")
    assert [c["address"] for c in json.loads(plain.out)["conflicts"]] == ["local.CronWorkflow.argo/recsys-prod-report"]
    adopt = json.loads(project.run("plan", "--adopt", "--format", "json").out)
    (change,) = [c for c in adopt["changes"] if c["action"] == "adopt"]
    assert change["address"] == "local.CronWorkflow.argo/recsys-prod-report"
    assert "deployed by Metaflow (flow ReportFlow)" in change["reason"]
    assert any(d["path"] == "/spec/schedules/0" for d in change["field_diffs"])
    assert adopt["conflicts"] == []
    assert project.run("apply", "--auto-approve", "--adopt").code == 0
    assert existing.read_text().startswith("# Managed by flowplan")
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_import_from_replaces_an_object_with_another_name(applied: Project) -> None:
    legacy = applied.root / "deploy/argo/cronworkflow/report-legacy.yaml"
    legacy.write_text("apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata:\n  name: report-legacy\n")
    (applied.root / OLD_CRON).unlink()  # pretend flowplan never made it: the legacy one is the real one
    result = applied.run(
        "import", "local.CronWorkflow.argo/recsys-prod-report", "--from", "report-legacy", "--auto-approve"
    )
    assert result.code == 0, result.err
    assert "-> local.CronWorkflow.argo/recsys-prod-report" in result.out
    assert not legacy.exists()
    assert (applied.root / OLD_CRON).exists()
    assert applied.run("plan", "--detailed-exitcode").code == 0


def test_other_projects_objects_are_never_adopted(tmp_path: Path) -> None:
    project = Project(tmp_path)
    theirs = tmp_path / OLD_CRON
    theirs.parent.mkdir(parents=True)
    header = {"project": "other", "branch": "prod", "address": "local.CronWorkflow.argo/recsys-prod-report"}
    theirs.write_text(
        "# Managed by flowplan\n# flowplan: " + json.dumps(header) + "\napiVersion: argoproj.io/v1alpha1\n"
    )
    plan = json.loads(project.run("plan", "--adopt", "--format", "json").out)
    assert [c["address"] for c in plan["conflicts"]] == ["local.CronWorkflow.argo/recsys-prod-report"]
    assert "other" in plan["conflicts"][0]["owner"]
    assert all(c["action"] != "adopt" for c in plan["changes"])


def test_project_rename_moves_every_object_and_empties_the_old_inventory(applied: Project) -> None:
    applied.edit("project: recsys", "project: recs")
    applied.manifest.write_text(
        applied.manifest.read_text() + "\nmoved:\n  - {kind: project, from: recsys, to: recs}\n"
    )
    plan = json.loads(applied.run("plan", "--format", "json").out)
    actions = {c["action"] for c in plan["changes"]}
    assert actions == {"move"}, actions
    assert len(plan["changes"]) == 13
    assert all(c["moved_scope"] == "recsys/prod" for c in plan["changes"])
    result = applied.run("apply", "--auto-approve")
    assert result.code == 0, result.err
    deployed = applied.deployed()
    assert len(deployed) == 13 and all("/recs-prod-" in "/" + p.split("/", 2)[2] for p in deployed), deployed
    old = json.loads((applied.root / ".flowplan/local/recsys.prod.json").read_text())
    assert old["entries"] == {}
    assert applied.run("plan", "--detailed-exitcode").code == 0


def test_branch_rename_moves_the_branch(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve", "--branch", "staging").code == 0
    project.manifest.write_text(
        project.manifest.read_text() + "\nmoved:\n  - {kind: branch, from: staging, to: preprod}\n"
    )
    prod_plan = json.loads(project.run("plan", "--format", "json").out)
    assert {c["action"] for c in prod_plan["changes"]} == {"create"}  # the entry only applies to preprod
    plan = json.loads(project.run("plan", "--branch", "preprod", "--format", "json").out)
    assert {c["action"] for c in plan["changes"]} == {"move"}
    assert project.run("apply", "--auto-approve", "--branch", "preprod").code == 0
    assert project.run("plan", "--branch", "preprod", "--detailed-exitcode").code == 0
    assert not any("staging" in p for p in project.deployed())
