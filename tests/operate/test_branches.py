"""Branch deployments beside production: ``flowplan branches`` lists them, ``destroy --branch`` removes
exactly one, ``branches --prune --older-than`` removes the stale ones and never production.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tests.backends.argo.test_live_support import NAMESPACE, Cluster
from tests.integration.worlds import FilesWorld
from tests.operate.helpers import parse

UNPROTECTED = ("    protect: true\n", "    protect: false\n")


def _rows(result: Any) -> dict[str, dict[str, Any]]:
    assert result.code == 0, result.text
    (rows,) = parse(result.out)["backends"].values()
    return {row["branch"]: row for row in rows}


def _backdate(world: FilesWorld, branch: str, days: int) -> None:
    """Make a branch's last apply ``days`` old (the inventory is the only record of when it was)."""
    path = world.root / ".flowplan" / "local" / f"recsys.{branch}.json"
    state = json.loads(path.read_text())
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    state["revisions"][-1]["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps(state))


def _files(world: FilesWorld) -> dict[str, bytes]:
    deploy = world.root / "deploy"
    return {str(p.relative_to(deploy)): p.read_bytes() for p in sorted(deploy.rglob("*.yaml"))}


def test_files_branches_destroy_one_and_prune_the_stale_never_prod(tmp_path: Path) -> None:
    world = FilesWorld(tmp_path)
    world.edit_manifest(*UNPROTECTED)
    for branch in ("prod", "pr-1", "pr-2", "pr-3"):
        assert world.apply("--branch", branch).code == 0
    rows = _rows(world.run("branches", "--format", "json"))
    assert sorted(rows) == ["pr-1", "pr-2", "pr-3", "prod"]
    assert rows["prod"]["production"] and not rows["pr-1"]["production"]
    assert {b: (r["objects"], r["marked_objects"], r["revision"]) for b, r in rows.items()} == {
        "prod": (13, 13, 1),
        "pr-1": (13, 13, 1),
        "pr-2": (13, 13, 1),
        "pr-3": (13, 13, 1),
    }
    assert all(r["git_commit"] == "0" * 40 and r["age_seconds"] < 600 for r in rows.values())

    before = _files(world)
    destroyed = world.run("destroy", "--branch", "pr-1", "--auto-approve")
    assert destroyed.code == 0, destroyed.text
    assert "flowplan plan for project recsys, branch pr-1 (destroy)" in destroyed.out
    assert "Apply complete: 0 created, 0 updated, 0 replaced, 13 destroyed." in destroyed.out
    after = _files(world)
    assert set(before) - set(after) == {p for p in before if "recsys-pr-1-" in p}
    assert all(after[p] == before[p] for p in after)  # prod and the other branches byte for byte
    assert sorted(_rows(world.run("branches", "--format", "json"))) == ["pr-2", "pr-3", "prod"]

    _backdate(world, "prod", 40)
    _backdate(world, "pr-2", 20)
    _backdate(world, "pr-3", 3)
    listed = world.run("branches", "--prune", "--older-than", "14d", "--dry-run")
    assert listed.code == 0 and "1 branch deployment(s) with no apply for 14d: pr-2" in listed.err
    assert _files(world) == after
    refused = world.run("branches", "--prune", "--older-than", "14d")
    assert refused.code == 1 and "--auto-approve" in refused.err

    pruned = world.run("branches", "--prune", "--older-than", "14d", "--auto-approve")
    assert pruned.code == 0, pruned.text
    remaining = _rows(world.run("branches", "--format", "json"))
    assert sorted(remaining) == ["pr-3", "prod"]
    assert not any("recsys-pr-2-" in p for p in _files(world))
    assert world.run("branches", "--older-than", "14d").code == 1  # --older-than goes with --prune
    assert "is not an age" in world.run("branches", "--prune", "--older-than", "soon").err


def test_a_branch_of_a_protected_flow_is_still_pruned(tmp_path: Path) -> None:
    """protect: guards production; a stale branch deployment of the same manifest is a preview and goes."""
    world = FilesWorld(tmp_path)  # the repository's manifest protects its training flow
    assert world.apply("--branch", "pr-8").code == 0
    assert world.apply().code == 0  # production
    _backdate(world, "pr-8", 30)
    pruned = world.run("branches", "--prune", "--older-than", "2w", "--auto-approve")
    assert pruned.code == 0, pruned.text
    assert sorted(_rows(world.run("branches", "--format", "json"))) == ["prod"]
    # production's protected objects are untouched, and still refuse a delete
    world.edit_manifest("\n  train:\n", "\n  train_renamed:\n")
    assert "protected" in world.run("plan").err


def _argo_objects(cluster: Cluster) -> dict[str, str]:
    """Every object of the namespace: kind/name → resourceVersion."""
    found = {}
    for kind in ("ConfigMap", "EventSource", "WorkflowTemplate", "CronWorkflow", "Sensor"):
        for obj in cluster.server.list_objects(kind, NAMESPACE):
            found[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    return found


def test_argo_two_branches_beside_prod_then_destroy_exactly_one(cluster: Cluster) -> None:
    cluster.edit(*UNPROTECTED)
    for branch in ("prod", "pr-41", "pr-42"):
        assert cluster.apply("--branch", branch).code == 0
    rows = _rows(cluster.flowplan("branches", "--format", "json"))
    assert sorted(rows) == ["pr-41", "pr-42", "prod"]
    assert {b: (r["objects"], r["marked_objects"], r["has_inventory"]) for b, r in rows.items()} == {
        "prod": (13, 13, True),
        "pr-41": (13, 13, True),
        "pr-42": (13, 13, True),
    }
    text = cluster.flowplan("branches").out
    assert "prod (production)" in text and "revision 1, by" in text

    before = _argo_objects(cluster)
    destroyed = cluster.flowplan("destroy", "--branch", "pr-41", "--auto-approve")
    assert destroyed.code == 0, destroyed.text
    after = _argo_objects(cluster)
    gone = set(before) - set(after)
    assert gone == {k for k in before if k.split("/")[1].startswith("recsys-pr-41-")} and len(gone) == 13
    # prod and pr-42 untouched (same resourceVersions); pr-41's inventory keeps its history (the destroy)
    untouched = {k: v for k, v in before.items() if "pr-41" not in k}
    assert {k: v for k, v in after.items() if "pr-41" not in k} == untouched
    assert set(after) - set(untouched) == {"ConfigMap/flowplan-inventory-recsys.pr-41"}
    assert sorted(_rows(cluster.flowplan("branches", "--format", "json"))) == ["pr-42", "prod"]


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_branches_renders_without_deployments(tmp_path: Path, fmt: str) -> None:
    world = FilesWorld(tmp_path)
    result = world.run("branches", "--format", fmt)
    assert result.code == 0
    assert "0 deployment(s)" in result.out or "| backend | branch |" in result.out
