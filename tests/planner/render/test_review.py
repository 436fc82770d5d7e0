"""The PR view end to end on the files backend: golden Markdown that says what a change means, with its picture.

Each case in golden/review/<case>/ has ``edit.json`` (``setup`` edits made
before the first apply, ``replace`` edits after it, as in
tests/planner/golden) and the expected ``plan.md`` and ``graph.mmd`` /
``graph.dot`` (``flowplan graph --view flows``). The plan's clock is fixed,
so the fire times are golden too. ``FLOWPLAN_UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from tests.planner.loop import Project

GOLDEN = Path(__file__).parent / "golden" / "review"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "edit.json").exists())
UPDATE = os.environ.get("FLOWPLAN_UPDATE_GOLDEN") == "1"
SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("planner.building.build._now", lambda: "2026-03-28T12:00:00Z")


def _check(path: Path, actual: str) -> None:
    if UPDATE or not path.exists():
        path.write_text(actual)
    assert actual == path.read_text(), f"{path} differs; rerun with FLOWPLAN_UPDATE_GOLDEN=1 and review"


def _project(tmp_path: Path, case: str) -> Project:
    edit = json.loads((GOLDEN / case / "edit.json").read_text())
    project = Project(tmp_path)
    for old, new in edit.get("setup", []):
        project.edit(old, new)
    assert project.run("apply", "--auto-approve").code == 0
    for old, new in edit["replace"]:
        project.edit(old, new)
    return project


@pytest.mark.parametrize("case", CASES)
def test_review_golden(tmp_path: Path, case: str) -> None:
    project = _project(tmp_path, case)
    edit = json.loads((GOLDEN / case / "edit.json").read_text())
    markdown = project.run("plan", "--format", "markdown")
    assert markdown.code == 0, markdown.err
    _check(GOLDEN / case / "plan.md", markdown.out)
    for fmt, suffix in (("mermaid", "mmd"), ("dot", "dot")):
        graph = project.run("graph", "--view", "flows", "--format", fmt)
        assert graph.code == 0, graph.err
        _check(GOLDEN / case / f"graph.{suffix}", graph.out)
        # the picture on the command line is the picture in the comment
        if fmt == "mermaid":
            assert f"```mermaid\n{graph.out}```" in markdown.out
    for needle in edit["says"]:
        assert needle in markdown.out, needle
    as_json = json.loads(project.run("plan", "--format", "json").out)
    jsonschema.validate(as_json, json.loads((SCHEMAS / "plan.schema.json").read_text()))


def test_split_writes_parts_and_the_full_plan(tmp_path: Path) -> None:
    project = _project(tmp_path, "shared_schedule")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "plan-009.md").write_text("stale part of an older, longer plan")
    result = project.run("plan", "--format", "markdown", "--split", "out", "--comment-limit", "2000")
    assert result.code == 0, result.err
    parts = sorted((tmp_path / "out").glob("plan-[0-9][0-9][0-9].md"))
    assert [p.name for p in parts] == [f"plan-{i:03d}.md" for i in range(1, len(parts) + 1)] and len(parts) > 1
    assert all(len(p.read_text().encode("utf-16-le")) // 2 <= 2000 for p in parts)
    assert result.out == parts[0].read_text()  # stdout is part 1: `> comment.md` keeps working
    full = (tmp_path / "out" / "plan-full.md").read_text()
    assert "Cut to fit" not in full and '+ spec.schedules[0]: "0 */6 * * *"' in full
    assert parts[1].read_text().startswith(f"<!-- flowplan-plan: recsys/prod part 2/{len(parts)} -->")


def test_split_needs_markdown(tmp_path: Path) -> None:
    result = Project(tmp_path).run("plan", "--split", "out")
    assert result.code == 1 and "--split needs --format markdown" in result.err


def test_graph_views_and_formats(tmp_path: Path) -> None:
    project = Project(tmp_path)
    order = project.run("graph", "--format", "mermaid")
    assert order.code == 0 and order.out.startswith("flowchart LR\n")
    assert "local.CronWorkflow.argo/recsys-prod-train" in order.out
    every = project.run("graph", "--view", "flows", "--all-flows", "--format", "dot")
    assert every.code == 0 and every.out.startswith("digraph flowplan {")
    assert every.out.count("subgraph cluster_") == 4
    bad = project.run("graph", "--view", "sideways")
    assert bad.code == 1 and "--view" in bad.err


def test_drift_report_matches_its_schema(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    schema = json.loads((SCHEMAS / "drift.schema.json").read_text())
    in_sync = json.loads(project.run("drift", "--format", "json").out)
    jsonschema.validate(in_sync, schema)
    target = tmp_path / "deploy/argo/cronworkflow/recsys-prod-train.yaml"
    target.write_text(target.read_text().replace("suspend: false", "suspend: true"))
    (tmp_path / "deploy/argo/sensor/recsys-prod-ingest.yaml").unlink()
    result = project.run("drift", "--format", "json")
    assert result.code == 2
    report = json.loads(result.out)
    jsonschema.validate(report, schema)
    assert {d["kind"] for d in report["drift"]} == {"changed", "deleted"}


def test_every_golden_plan_json_matches_the_schema() -> None:
    schema = json.loads((SCHEMAS / "plan.schema.json").read_text())
    files = sorted((Path(__file__).parents[1] / "golden").glob("*/plan.json"))
    assert files
    for path in files:
        jsonschema.validate(json.loads(path.read_text()), schema)
