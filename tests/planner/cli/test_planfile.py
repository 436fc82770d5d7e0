"""Saved plan files: written at format 2 under one checksum; older, newer, edited and foreign files refused."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from planner.building import PlanOptions, build_plan
from planner.cli.planfile import FORMAT_VERSION, read_plan_file, save_plan
from planner.cli.session import ManifestOptions, load
from planner.errors import StalePlanError
from planner.plan import plan_file_checksum
from planner.render.json import plan_view
from tests.planner.loop import Project


@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    project = Project(tmp_path)
    options = ManifestOptions(str(project.manifest), cli_vars=(("image_tag", "2026.12.0"),))
    session = load(options)
    plan_options = PlanOptions(targets=("report",), adopt=True)
    result = build_plan(session.manifest, session.backends, session.provenance, plan_options)
    path = tmp_path / "plan.bin"
    save_plan(str(path), result.plan, options, plan_options)
    return path


def _rewrite(path: Path, **fields: object) -> None:
    document = json.loads(path.read_text())
    document.update(fields)
    path.write_text(json.dumps(document))


def test_a_saved_plan_reads_back_with_its_options_and_is_private(saved: Path) -> None:
    document = json.loads(saved.read_text())
    assert (
        (document["kind"], document["format_version"])
        == ("flowplan-saved-plan", FORMAT_VERSION)
        == (
            "flowplan-saved-plan",
            2,
        )
    )
    assert document["checksum"] == plan_file_checksum(document["payload"])
    assert os.stat(saved).st_mode & 0o777 == 0o600
    plan = read_plan_file(str(saved))
    assert plan.options.cli_vars == (("image_tag", "2026.12.0"),)
    assert plan.plan_options.targets == ("report",) and plan.plan_options.adopt
    assert plan.plan.changes and {c.flow for c in plan.plan.changes} <= {"report", None}


def test_a_plan_from_an_older_flowplan_is_refused_with_what_to_do(saved: Path) -> None:
    _rewrite(saved, format_version=1)
    with pytest.raises(StalePlanError) as caught:
        read_plan_file(str(saved))
    assert "was made by an older flowplan" in caught.value.message and "make a new plan" in caught.value.message
    _rewrite(saved, format_version=None)
    with pytest.raises(StalePlanError, match="older flowplan"):
        read_plan_file(str(saved))


def test_a_plan_from_a_newer_flowplan_is_refused(saved: Path) -> None:
    _rewrite(saved, format_version=3)
    with pytest.raises(StalePlanError, match=r"made by a newer flowplan \(saved plan format 3; this one reads 2\)"):
        read_plan_file(str(saved))


def test_every_payload_field_is_under_the_checksum(saved: Path) -> None:
    document = json.loads(saved.read_text())
    document["payload"]["plan_options"]["adopt"] = False
    saved.write_text(json.dumps(document))
    with pytest.raises(StalePlanError, match="modified after flowplan wrote it"):
        read_plan_file(str(saved))


def test_other_files_are_not_plans(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"kind": "something-else", "format_version": 2}')
    with pytest.raises(StalePlanError, match="is not a flowplan plan file"):
        read_plan_file(str(other))
    other.write_text("not json")
    with pytest.raises(StalePlanError, match="does not parse"):
        read_plan_file(str(other))


def test_a_saved_plan_shows_exactly_what_the_plan_showed(tmp_path: Path) -> None:
    """The field diffs a saved plan shows are derived from its bodies again; they equal the plan's own."""
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    drifted = sorted((tmp_path / "deploy").rglob("*.yaml"))[0]
    drifted.write_text(drifted.read_text().replace("recsys", "recsys-x", 1))
    planned = project.run("plan", "--out", "plan.bin", "--var", "image_tag=2027.1.0", "--adopt")
    assert planned.code == 0
    stored = json.loads((tmp_path / "plan.bin").read_text())["payload"]["plan"]["changes"]
    assert sum(len(change.get("field_diffs", [])) for change in stored) > 1
    shown = project.run("show", "plan.bin")
    assert shown.code == 0 and shown.out == planned.out


def test_a_saved_plan_explains_its_schedules_from_the_facts_it_carries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend's compiler read each side's schedule when planning; the saved plan keeps what it read."""
    monkeypatch.chdir(tmp_path)
    project = Project(tmp_path)
    options = ManifestOptions(str(project.manifest), cli_vars=(("image_tag", "2026.12.0"),))
    session = load(options)
    plan = build_plan(session.manifest, session.backends, session.provenance, PlanOptions()).plan
    save_plan(str(tmp_path / "plan.bin"), plan, options, PlanOptions())
    loaded = read_plan_file(str(tmp_path / "plan.bin")).plan
    scheduled = [c for c in loaded.changes if c.schedule_after is not None]
    assert scheduled and all(c.address.kind == "CronWorkflow" for c in scheduled)
    assert {str(c.address): c.schedule_after for c in scheduled} == {
        str(c.address): c.schedule_after for c in plan.changes if c.schedule_after is not None
    }
    assert plan_view(loaded) == plan_view(plan)
    # the words come from the recorded facts, not from reading the bodies again
    bodiless = replace(loaded, changes=tuple(replace(c, before=None, after=None) for c in loaded.changes))
    explained = [c for c in plan_view(bodiless)["changes"] if "schedule" in c]
    assert len(explained) == len(scheduled) and explained[0]["schedule"]["after"]["runs_per_day"] is not None


def test_plan_out_never_loosens_an_existing_files_mode(tmp_path: Path) -> None:
    project = Project(tmp_path)
    existing = tmp_path / "plan.bin"
    existing.write_text("old\n")
    existing.chmod(0o400)
    assert project.run("plan", "--out", "plan.bin").code == 0
    assert os.stat(existing).st_mode & 0o777 == 0o400
    assert read_plan_file(str(existing)).plan.changes
