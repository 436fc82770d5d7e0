"""Listing in a second process (backends/argo/list_scan.py) reads what the reader reads in process.

The child only saves time: every plan here is made twice, listed by the child and in process, and
the two plans must be the same (changes, their diffs, the live fingerprint, the call counts). A
child that fails leaves the parent to list by itself; a listing started before the manifest was
loaded is adopted only by the reader it was started for.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from backends.argo import list_scan
from backends.argo.backend import ArgoBackend
from planner.contract import Scope
from planner.manifest import load_manifest
from tests.backends.argo.test_live_support import NAMESPACE, Cluster, cluster, only_lists

__all__ = ["cluster"]


def _finished(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per child listing read back, whether its answer was used."""
    used: list[bool] = []
    real = list_scan.ChildListing.finish

    def finish(self: list_scan.ChildListing, desired: Any) -> Any:
        answer = real(self, desired)
        used.append(answer is not None)
        return answer

    monkeypatch.setattr(list_scan.ChildListing, "finish", finish)
    return used


def _plan(cluster: Cluster) -> tuple[dict[str, Any], dict[str, int]]:
    """The JSON plan without its timestamp, and the calls the proxy saw."""
    cluster.proxy.reset_counts()
    result = cluster.flowplan("plan", "--format", "json")
    assert result.code == 0, result.text
    plan = json.loads(result.out)
    plan.pop("created_at", None)
    return plan, cluster.counts()


def _changed(cluster: Cluster) -> None:
    """The example applied, then: a template edited by hand (drift, with its field manager), a schedule
    edited in the manifest, and a trigger removed (its Sensor and the EventSource become orphans)."""
    assert cluster.apply().code == 0
    cron = cluster.server.get_object("CronWorkflow", NAMESPACE, "recsys-prod-report")
    cron["spec"]["suspend"] = True
    cluster.server.put_object(cron, manager="kubectl-edit")
    cluster.edit('cron: "30 2 * * *"', 'cron: "45 2 * * *"')
    cluster.edit("    triggers:\n      - after: ingest\n", "")


def test_the_child_listing_plans_exactly_what_the_in_process_listing_plans(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    _changed(cluster)
    used = _finished(monkeypatch)
    monkeypatch.setattr(list_scan, "IN_CHILD_FROM", 10**9)
    in_process, in_process_calls = _plan(cluster)
    assert used == []
    monkeypatch.setattr(list_scan, "IN_CHILD_FROM", 1)
    child, child_calls = _plan(cluster)
    assert used == [True]
    assert child == in_process
    causes = sorted((c["action"], c["cause"]) for c in child["changes"])
    assert ("delete", "orphan") in causes and ("update", "drift") in causes and ("update", "manifest") in causes
    assert child_calls == in_process_calls and only_lists(child_calls)


def test_a_failing_child_leaves_the_listing_to_the_parent(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    _changed(cluster)
    expected, expected_calls = _plan(cluster)
    used = _finished(monkeypatch)
    monkeypatch.setattr(list_scan, "IN_CHILD_FROM", 1)
    monkeypatch.setattr(list_scan, "COMMAND", [sys.executable, "-c", "import sys; sys.exit(1)"])
    plan, calls = _plan(cluster)
    assert used == [False]
    assert plan == expected and calls == expected_calls


def test_a_listing_never_read_back_is_stopped_when_flowplan_exits(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan that fails before reading its listing (a compile error) leaves no process calling the cluster."""
    manifest = load_manifest(cluster.manifest, cli_vars={"namespace": NAMESPACE, "sensor_namespace": NAMESPACE})
    spec = next(s for s in manifest.backends.values() if s.type == "argo")
    scope = Scope(spec.name, manifest.project, manifest.branch)
    backend = ArgoBackend(spec, scope)
    monkeypatch.setattr(list_scan, "COMMAND", [sys.executable, "-c", "import time; time.sleep(60)"])
    child = list_scan.ChildListing(backend.kube, scope, [("CronWorkflow", NAMESPACE)])
    assert child in list_scan._RUNNING and child.process is not None and child.process.poll() is None
    list_scan._stop_running()  # what the interpreter runs at exit
    assert child.process.poll() is not None and child not in list_scan._RUNNING
