"""A project on the files backend in a temporary directory, planned and applied through the library.

Each stage of :mod:`planner.applying` is tested on real plans of the repository's manifest: the
files backend writes real files, so what a stage wrote (or did not) is read back from disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from planner.applying import ApplyOptions, Transaction
from planner.building import PlanOptions, PlanResult, build_plan
from planner.cli.session import ManifestOptions, Session, load
from planner.contract import InventoryState, Scope
from tests.planner.loop import Project


@dataclass
class Stand:
    """The project, its session (manifest and backends opened) and a way to plan it now."""

    project: Project
    session: Session

    @property
    def scope(self) -> Scope:
        return Scope("local", self.session.manifest.project, self.session.manifest.branch)

    def plan(self, options: PlanOptions | None = None) -> PlanResult:
        return build_plan(
            self.session.manifest, self.session.backends, self.session.provenance, options or PlanOptions()
        )

    def replanner(self, options: PlanOptions | None = None) -> Callable[[], PlanResult]:
        return lambda: self.plan(options)

    def transaction(self, options: ApplyOptions | None = None, plan_options: PlanOptions | None = None) -> Transaction:
        backends, provenance = self.session.backends, self.session.provenance
        return Transaction(backends, provenance, self.replanner(plan_options), options or ApplyOptions())

    def inventory(self) -> InventoryState:
        return self.session.backends["local"].inventory(self.scope).load()

    def lock_file(self) -> Path:
        return self.project.root / ".flowplan" / "local" / "recsys.prod.lock"


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("planner.building.build._now", lambda: "2026-01-01T00:00:00Z")


@pytest.fixture
def stand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stand:
    monkeypatch.chdir(tmp_path)
    project = Project(tmp_path)
    return Stand(project, load(ManifestOptions(str(project.manifest))))


@pytest.fixture
def applied(stand: Stand) -> Stand:
    outcome = stand.transaction().apply(stand.plan())
    assert outcome.ok and outcome.revision == 1
    return stand
