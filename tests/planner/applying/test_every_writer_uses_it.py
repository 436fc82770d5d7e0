"""Every command that writes goes through the one transaction: lock, re-plan under it, compare.

Spies wrap the real lock acquisition, the re-plan and the comparison (each still runs), and the
commands run through the CLI on the files backend as a person would run them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planner.applying import transaction as transaction_module
from planner.applying.locks import HeldLocks
from planner.applying.transaction import Replan, Transaction
from planner.building import PlanResult
from planner.plan import Plan
from tests.planner.loop import Project

OLD_CRON = "deploy/argo/cronworkflow/recsys-prod-report.yaml"


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """``(stage, detail)`` in the order the transaction's stages ran, over every command of a test."""
    seen: list[tuple[str, str]] = []
    acquire = HeldLocks.acquire.__func__  # type: ignore[attr-defined]
    check_same = transaction_module.check_same
    init = Transaction.__init__

    def spied_acquire(cls: type[HeldLocks], backends: Any, result: Any, names: Any, operation: str, ttl: float) -> Any:
        seen.append(("lock", operation))
        return acquire(cls, backends, result, names, operation, ttl)

    def spied_check(expected: Plan, actual: Plan, what: str) -> None:
        seen.append(("compare", what))
        check_same(expected, actual, what)

    def spied_init(self: Transaction, backends: Any, provenance: Any, replan: Replan, *a: Any, **k: Any) -> None:
        def spied_replan() -> PlanResult:
            seen.append(("replan", ""))
            return replan()

        init(self, backends, provenance, spied_replan, *a, **k)

    monkeypatch.setattr(HeldLocks, "acquire", classmethod(spied_acquire))
    monkeypatch.setattr(transaction_module, "check_same", spied_check)
    monkeypatch.setattr(Transaction, "__init__", spied_init)
    return seen


def _under_lock(operation: str, shown: str = "the plan shown") -> list[tuple[str, str]]:
    return [("lock", operation), ("replan", ""), ("compare", shown)]


def test_apply_apply_file_import_rollback_and_destroy_all_lock_replan_and_compare(
    tmp_path: Path, steps: list[tuple[str, str]]
) -> None:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    assert steps == _under_lock("apply")

    steps.clear()
    project.edit('default: "2026.11.1"', 'default: "2026.12.0"')
    assert project.run("plan", "--out", "plan.bin").code == 0
    assert steps == [], "planning takes no lock"
    applied = project.run("apply", "plan.bin")
    assert applied.code == 0, applied.err
    assert steps == [("compare", "the saved plan plan.bin"), *_under_lock("apply")]

    steps.clear()
    legacy = tmp_path / "deploy/argo/cronworkflow/report-legacy.yaml"
    legacy.write_text("apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata:\n  name: report-legacy\n")
    (tmp_path / OLD_CRON).unlink()
    imported = project.run(
        "import", "local.CronWorkflow.argo/recsys-prod-report", "--from", "report-legacy", "--auto-approve"
    )
    assert imported.code == 0, imported.err
    assert steps == _under_lock("apply") and not legacy.exists()

    steps.clear()
    rolled = project.run("rollback", "--to", "1", "--auto-approve")
    assert rolled.code == 0, rolled.err
    assert steps == _under_lock("rollback", "the rollback plan shown")

    steps.clear()
    assert project.run("apply", "--auto-approve", "--branch", "pr-1").code == 0
    destroyed = project.run("destroy", "--auto-approve", "--branch", "pr-1")
    assert destroyed.code == 0, destroyed.err
    assert steps == [*_under_lock("apply"), *_under_lock("destroy")]


def test_an_empty_apply_repairs_the_inventory_under_the_lock_after_planning_again(
    tmp_path: Path, steps: list[tuple[str, str]]
) -> None:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    index = next((tmp_path / ".flowplan").rglob("*.json"))
    index.write_text(index.read_text().replace('"applied"', '"pending-update"'))
    steps.clear()
    repaired = project.run("apply", "--auto-approve")
    assert repaired.code == 0 and "Recorded the inventory of local again" in repaired.err
    assert steps == [("lock", "apply"), ("replan", "")]
    assert project.run("apply", "--auto-approve").code == 0
