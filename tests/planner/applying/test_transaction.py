"""The transaction: compare, confirm, lock, re-plan, compare again, waves, revision, release."""

from __future__ import annotations

import pytest

from planner.applying import ApplyOptions, Seen, Transaction
from planner.building import PlanOptions, PlanResult
from planner.errors import StalePlanError
from planner.plan import Plan
from tests.planner.applying.conftest import Stand

TEMPLATE = "deploy/argo/workflowtemplate/recsys-prod-report.yaml"


def test_an_apply_writes_records_and_releases(stand: Stand) -> None:
    first = stand.plan()
    outcome = stand.transaction().apply(first)
    assert outcome.ending == "applied" and outcome.ok and outcome.revision == 1
    assert outcome.plan is not None and outcome.plan is not first.plan  # the plan made under the lock
    assert len(stand.project.deployed()) == 13 and not stand.lock_file().exists()
    assert stand.plan().plan.is_empty


def test_the_person_is_asked_only_when_there_is_work_and_no_means_nothing_written(stand: Stand) -> None:
    asked: list[Plan] = []

    def no(plan: Plan) -> bool:
        asked.append(plan)
        return False

    first = stand.plan()
    outcome = stand.transaction().apply(first, confirm=no)
    assert outcome.ending == "cancelled" and asked == [first.plan]
    assert stand.project.deployed() == [] and not stand.lock_file().exists()
    assert stand.transaction().apply(first).ok
    empty = stand.plan()
    assert stand.transaction().apply(empty, confirm=no).ending == "nothing" and len(asked) == 1


def test_a_change_between_showing_and_locking_is_refused_with_nothing_written(applied: Stand) -> None:
    report = PlanOptions(targets=("report",), mode="destroy", allow_destroy=True)
    first = applied.plan(report)
    template = applied.project.root / TEMPLATE

    def someone_edits_meanwhile(plan: Plan) -> bool:
        template.write_text(template.read_text() + "# edited by hand\n")
        return True

    before = applied.project.snapshot()
    with pytest.raises(StalePlanError, match="the plan shown is stale"):
        applied.transaction(plan_options=report).apply(first, confirm=someone_edits_meanwhile)
    after = applied.project.snapshot()
    assert {k: v for k, v in after.items() if k != TEMPLATE} == {k: v for k, v in before.items() if k != TEMPLATE}
    assert not applied.lock_file().exists()


def test_a_saved_plan_that_moved_is_refused_before_any_lock(applied: Stand) -> None:
    report = PlanOptions(targets=("report",), mode="destroy", allow_destroy=True)
    saved = applied.plan(report).plan
    (applied.project.root / TEMPLATE).write_text((applied.project.root / TEMPLATE).read_text() + "# edited\n")
    before = applied.project.snapshot()
    transaction = applied.transaction(plan_options=report)
    with pytest.raises(StalePlanError, match=r"the saved plan p\.bin is stale"):
        transaction.apply(applied.plan(report), Seen(saved, saved_as="the saved plan p.bin"))
    assert applied.project.snapshot() == before


def test_a_dry_run_takes_no_lock_and_records_nothing(stand: Stand) -> None:
    replans: list[PlanResult] = []

    def replan() -> PlanResult:
        replans.append(stand.plan())
        return replans[-1]

    backends, provenance = stand.session.backends, stand.session.provenance
    transaction = Transaction(backends, provenance, replan, ApplyOptions(dry_run=True))
    outcome = transaction.apply(stand.plan())
    assert outcome.ok and outcome.revision is None and replans == []
    assert stand.project.deployed() == [] and not (stand.project.root / ".flowplan").exists()
