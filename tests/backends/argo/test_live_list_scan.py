"""Listing in a second process (backends/argo/list_scan.py) reads what the reader reads in process.

The child only saves time: every plan here is made twice, listed by the child and in process, and
the two plans must be the same (changes, their diffs, the live fingerprint, the call counts). A
child that fails leaves the parent to list by itself, and a child is never left running: the
reader that started it stops it when it closes, and a child whose owner went away exits by itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from backends.argo import list_scan
from backends.argo.backend import ArgoBackend
from backends.argo.compile import VOLATILE_PATHS
from bench import generate, seed
from planner.building import build_plan
from planner.cli.session import ManifestOptions
from planner.contract import CompileContext, Scope
from planner.manifest import load_manifest
from planner.resources import Provenance, digest, without
from tests.backends.argo.test_live_support import NAMESPACE, Cluster, cluster, only_lists
from tests.support.fixtures import ProxyEnv
from tests.support.kubeconfig import write_kubeconfig

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


def _listing_children() -> list[int]:
    """Processes of this one running ``backends.argo.list_scan`` (a killed one is gone once reaped)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # exited while we looked
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"backends.argo.list_scan" in cmdline:
            found.append(int(entry))
    return found


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


def _read(cluster: Cluster, **extra: Any) -> dict[str, Any]:
    """What a reader of the backend opened with ``extra`` finds after a prefetch, as comparable data."""
    backend = cluster.backend(**extra)
    manifest = load_manifest(cluster.manifest, cli_vars={"namespace": NAMESPACE, "sensor_namespace": NAMESPACE})
    desired = backend.compiler().compile(CompileContext(manifest, backend.spec, Provenance("t", "d")))
    with backend.reader() as reader:
        backend.inventory(backend.scope).load()
        reader.prefetch(backend.scope)
        state = reader.read(backend.scope, desired)
    owned = state.owned.items()
    return {
        # compared as the planner compares them: the child hands over the desired body where equal
        "owned": {str(a): (v.version, v.spec_hash, digest(without(v.body, VOLATILE_PATHS))) for a, v in owned},
        "others": {str(a): v.version for a, v in state.others.items()},
        "calls": state.calls,
    }


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
    assert _listing_children() == []


def test_a_failing_child_leaves_the_listing_to_the_parent(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    _changed(cluster)
    expected = _read(cluster, list_child_from=10**9)
    used = _finished(monkeypatch)
    failing = [sys.executable, "-c", "import sys; sys.exit(1)"]
    assert _read(cluster, list_child_from=1, list_child_command=failing) == expected
    assert used == [False]
    assert len(expected["owned"]) > 5
    assert _read(cluster, list_child_from=1) == expected
    assert used == [False, True]


def test_a_child_whose_owner_went_away_exits_by_itself(cluster: Cluster) -> None:
    """No ``atexit``: a flowplan killed mid-plan closes the child's stdin, and the child stops listing."""
    assert cluster.apply().code == 0
    backend = cluster.backend()
    listing = list_scan.ChildListing(backend.kube, backend.scope, [("CronWorkflow", NAMESPACE)])
    process = listing.child.process
    assert process is not None and process.stdin is not None
    time.sleep(0.2)  # the request is written (by a thread) before stdin closes
    process.stdin.close()
    assert process.wait(timeout=60) == 1
    listing.stop()


def test_a_large_deployment_is_listed_by_a_child_that_its_reader_stops(
    k8s_proxy: ProxyEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """250 generated flows (771 objects): a plan lists through the child and plans what the parent would;
    a reader closed before reading its listing leaves no process behind, nor does a closed backend."""
    manifest = tmp_path / "flows.yaml"
    manifest.write_text(generate.generate(250, "argo"))
    server = k8s_proxy.k8s.server
    direct = write_kubeconfig(tmp_path / "direct", server.url, k8s_proxy.k8s.token, namespace="bench")
    count = seed.seed_argo(
        ManifestOptions(str(manifest), cli_vars=(("kubeconfig", str(direct)),)), server.url, k8s_proxy.k8s.token
    )
    session, name, _, _ = seed.compiled(
        ManifestOptions(str(manifest), cli_vars=(("kubeconfig", str(k8s_proxy.kubeconfig_path)),))
    )
    scope = Scope(name, session.manifest.project, session.manifest.branch)

    def backend(child_from: int) -> ArgoBackend:
        return ArgoBackend(session.manifest.backends[name], scope, {"list_child_from": child_from})

    def plan(child_from: int) -> tuple[Any, dict[str, int]]:
        k8s_proxy.proxy.reset_counts()
        opened = backend(child_from)
        try:
            result = build_plan(session.manifest, {name: opened}, session.provenance)
        finally:
            opened.close()
        return result.plan, k8s_proxy.proxy.counts()

    used = _finished(monkeypatch)
    in_process, in_process_calls = plan(count + 1)
    assert used == []
    child, child_calls = plan(count)
    assert used == [True], "the inventory of 771 addresses was listed by the child"
    assert child.is_empty and in_process.is_empty and child.unchanged == in_process.unchanged == count
    assert child.live_fingerprint == in_process.live_fingerprint
    assert child_calls == in_process_calls and only_lists(child_calls)
    assert _listing_children() == []

    opened = backend(count)
    reader = opened.reader()
    opened.inventory(scope).load()
    reader.prefetch(scope)
    assert len(_listing_children()) == 1, "the listing runs in a second process"
    reader.close()
    assert _listing_children() == []

    reader = opened.reader()
    reader.prefetch(scope)
    assert len(_listing_children()) == 1
    opened.close()  # the backend closes the readers it handed out
    assert _listing_children() == []
    assert used == [True], "a stopped listing is never read"
