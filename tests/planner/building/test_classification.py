"""The builder's decisions as a table: paired desired/live fixtures in, classification out.

Each folder under ``cases/`` holds ``desired.json`` (resources), ``live.json`` (``owned`` and
``others``), ``inventory.json`` and ``expected.json``; an optional ``case.json`` gives plan options,
``moved`` entries and ``ignore_changes`` rules. The plan is built through :mod:`.memory`'s backend,
with no CLI and no files, and compared per address: action, cause, changed field paths, drifted;
then conflicts, untracked objects and the counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planner.building import PlanOptions, build_plan
from planner.manifest import Backend as BackendSpec
from planner.manifest import IgnoreRule, Manifest
from planner.manifest.model import Moved
from planner.plan import Plan
from planner.resources import Provenance
from tests.planner.building.memory import (
    BRANCH,
    PROJECT,
    MemoryBackend,
    inventory_state,
    live_state,
    resource,
)

CASES = Path(__file__).parent / "cases"


def _load(folder: Path, name: str, default: Any) -> Any:
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else default


def plan_case(folder: Path) -> Plan:
    case = _load(folder, "case.json", {})
    rules = tuple(IgnoreRule(*rule.split(":", 1)) for rule in case.get("ignore_changes", []))
    spec = BackendSpec("mem", "files", {}, ignore_changes=rules)
    desired = [resource(d) for d in _load(folder, "desired.json", [])]
    live = live_state(_load(folder, "live.json", {}))
    state = inventory_state(_load(folder, "inventory.json", {}), {r.address: r for r in desired}, live)
    manifest = Manifest(
        path=str(folder / "flows.yaml"),
        project=PROJECT,
        branch=case.get("branch", BRANCH),
        backends={"mem": spec},
        flows={},
        moved=tuple(Moved(m["source"], m["target"]) for m in case.get("moved", [])),
    )
    options = PlanOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in case.get("options", {}).items()})
    backend = MemoryBackend(spec, desired, live, state)
    return build_plan(manifest, {"mem": backend}, Provenance("0", "d"), options).plan


def observed(plan: Plan) -> dict[str, Any]:
    """The plan in the fixtures' terms (only what ``expected.json`` states is compared)."""
    changes = {}
    for change in plan.changes:
        entry: dict[str, Any] = {
            "action": change.action.value,
            "cause": change.cause.value,
            "paths": [d.path for d in change.field_diffs],
            "drifted": change.drifted,
        }
        if change.moved_from is not None:
            entry["moved_from"] = str(change.moved_from)
        if change.reason is not None:
            entry["reason"] = change.reason
        changes[str(change.address)] = entry
    return {
        "changes": changes,
        "conflicts": {str(c.address): c.owner for c in plan.conflicts},
        "untracked": [str(a) for a in plan.untracked],
        "unchanged": plan.unchanged,
        "ignored_differences": plan.ignored_differences,
        "waves": [[str(a) for a in wave] for wave in plan.waves],
    }


@pytest.mark.parametrize("folder", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_case(folder: Path) -> None:
    expected = json.loads((folder / "expected.json").read_text())
    got = observed(plan_case(folder))
    assert {key: got[key] for key in expected} == expected


def test_every_decision_has_a_case() -> None:
    """The table covers each cause and action the builder can decide."""
    seen_actions, seen_causes = set(), set()
    for folder in CASES.iterdir():
        expected = json.loads((folder / "expected.json").read_text())
        for change in expected.get("changes", {}).values():
            seen_actions.add(change["action"])
            seen_causes.add(change["cause"])
    assert seen_actions >= {"create", "update", "replace", "delete", "adopt", "move"}
    assert seen_causes >= {
        "manifest",
        "drift",
        "manifest+drift",
        "deleted-outside",
        "orphan",
        "destroy",
        "adopt",
        "moved",
    }
