"""The comparison stage: a fresh plan must match the one the person saw, or nothing is written."""

from __future__ import annotations

import pytest

from planner.applying import check_same
from planner.applying.compare import change_set_difference
from planner.building import PlanOptions
from planner.errors import StalePlanError
from tests.planner.applying.conftest import Stand


def test_two_plans_of_the_same_state_are_the_same(stand: Stand) -> None:
    check_same(stand.plan().plan, stand.plan().plan, "the plan shown")


def test_a_change_set_that_moved_is_refused_naming_each_address(applied: Stand) -> None:
    report = PlanOptions(targets=("report",), mode="destroy", allow_destroy=True)
    before = applied.plan(report).plan
    template = applied.project.root / "deploy/argo/workflowtemplate/recsys-prod-report.yaml"
    template.write_text(template.read_text() + "# edited by hand\n")
    after = applied.plan(report).plan
    with pytest.raises(StalePlanError) as caught:
        check_same(before, after, "the plan shown")
    message = caught.value.message
    assert message.startswith("the plan shown is stale: planning again gives a different change set")
    assert "local.WorkflowTemplate.argo/recsys-prod-report (delete with other content or another live version)" in (
        message
    )
    assert message.endswith("nothing was written")


def test_other_inputs_are_refused_before_the_change_set(stand: Stand) -> None:
    normal = stand.plan().plan
    destroy = stand.plan(PlanOptions(mode="destroy", allow_destroy=True)).plan
    with pytest.raises(StalePlanError, match=r"the saved plan p\.bin was made from different inputs \(mode"):
        check_same(normal, destroy, "the saved plan p.bin")


def test_the_difference_says_what_appeared_and_what_went(applied: Stand, stand: Stand) -> None:
    empty = applied.plan().plan
    (applied.project.root / "deploy/argo/workflowtemplate/recsys-prod-train.yaml").unlink()
    again = applied.plan().plan
    assert change_set_difference(empty, again) == "local.WorkflowTemplate.argo/recsys-prod-train (create now planned)"
    assert change_set_difference(again, empty) == (
        "local.WorkflowTemplate.argo/recsys-prod-train (create no longer planned)"
    )
