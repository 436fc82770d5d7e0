"""What the reader lists and how it normalizes: controllers' fields are not drift, people's edits are."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any
from urllib.parse import parse_qs

from planner.cli import run
from planner.contract import Scope
from tests.backends.argo.test_live_support import NAMESPACE, REPO, Cluster, cluster, only_lists
from tests.support.proxy import ProxyRequest

__all__ = ["cluster"]

SCOPE = Scope("cluster", "recsys", "prod")


def _record_lists(cluster: Cluster) -> list[tuple[str, dict[str, list[str]]]]:
    seen: list[tuple[str, dict[str, list[str]]]] = []

    def record(request: ProxyRequest) -> None:
        if request.key.startswith("list "):
            seen.append((request.key, parse_qs(request.query)))
        return None

    cluster.proxy.rules.append(record)
    return seen


def test_a_first_plan_looks_for_foreign_objects_per_kind_not_per_resource(cluster: Cluster) -> None:
    seen = _record_lists(cluster)
    assert cluster.flowplan("plan").code == 0
    selectors: dict[str, list[str]] = {}
    for key, query in seen:
        selectors.setdefault(key, []).append(
            query.get("labelSelector", query.get("fieldSelector", ["(all)"]))[0].split(",")[0]
        )
    selectors = {key: sorted(values) for key, values in selectors.items()}  # lookups run in parallel
    assert selectors == {
        # the inventory, the owned list, then one unfiltered list: 3 sink names are missing
        "list configmaps": ["(all)"] + ["app.kubernetes.io/managed-by=flowplan"] * 2,
        # 1 or 2 missing names: one LIST narrowed by fieldSelector per name
        "list eventsources": ["app.kubernetes.io/managed-by=flowplan", "metadata.name=recsys-prod-flow-events"],
        "list sensors": [
            "app.kubernetes.io/managed-by=flowplan",
            "metadata.name=recsys-prod-features",
            "metadata.name=recsys-prod-ingest",
        ],
        "list workflowtemplates": ["(all)", "app.kubernetes.io/managed-by=flowplan"],
        "list cronworkflows": ["(all)", "app.kubernetes.io/managed-by=flowplan"],
    }
    assert all(q.get("limit") == ["500"] for _, q in seen)


def test_pages_are_followed_with_continue_tokens(cluster: Cluster) -> None:
    for i in range(7):
        cluster.server.put_object(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "WorkflowTemplate",
                "metadata": {"name": f"someone-{i}", "namespace": NAMESPACE},
                "spec": {"entrypoint": "x"},
            }
        )
    backend = cluster.backend()
    from backends.argo.client import KINDS

    seen = _record_lists(cluster)
    items = backend.kube.list(KINDS["WorkflowTemplate"], NAMESPACE, page_size=3)
    assert sorted(o["metadata"]["name"] for o in items) == [f"someone-{i}" for i in range(7)]
    assert len(seen) == 3 and "continue" in seen[1][1] and "continue" in seen[2][1]


def test_controller_fields_are_not_drift_and_survive_an_update(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    server = cluster.server
    cron = server.get_object("CronWorkflow", NAMESPACE, "recsys-prod-train")
    cron["metadata"]["annotations"]["cronworkflows.argoproj.io/last-used-schedule"] = "CRON_TZ=Europe/Berlin 30 2 * * *"
    cron["status"] = {"lastScheduledTime": "2026-11-26T01:30:00Z", "active": []}
    cron["metadata"]["finalizers"] = ["example.com/keep"]
    server.put_object(cron, manager="workflow-controller")
    server.set_status("Sensor", NAMESPACE, "recsys-prod-ingest", {"conditions": [{"type": "Deployed"}]})
    planned = cluster.flowplan("plan", "--detailed-exitcode")
    assert planned.code == 0, planned.text

    cluster.edit('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    assert cluster.apply().code == 0
    after = server.get_object("CronWorkflow", NAMESPACE, "recsys-prod-train")
    assert after["spec"]["schedules"] == ["45 3 * * *"]
    assert after["status"]["lastScheduledTime"] == "2026-11-26T01:30:00Z"  # a full PUT did not erase it
    assert after["metadata"]["finalizers"] == ["example.com/keep"]
    assert "cronworkflows.argoproj.io/last-used-schedule" in after["metadata"]["annotations"]
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0


def test_an_edit_by_hand_is_drift_named_with_its_manager_and_is_restored(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    cron = cluster.server.get_object("CronWorkflow", NAMESPACE, "recsys-prod-report")
    cron["spec"]["suspend"] = True
    cluster.server.put_object(cron, manager="kubectl-edit")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(["plan", *cluster.args(), "--format", "json", "--detailed-exitcode"])
    assert code == 2
    change = next(c for c in json.loads(out.getvalue())["changes"])
    assert change["address"] == f"cluster.CronWorkflow.{NAMESPACE}/recsys-prod-report"
    assert change["drifted"] is True and change["cause"] == "drift"
    assert {"manager": "kubectl-edit", "operation": "Update"}.items() <= change["managers"][-1].items()
    assert [d["path"] for d in change["field_diffs"]] == ["/spec/suspend"]
    live = cluster.backend().reader().read(SCOPE, [])
    owners = live.owned[next(a for a in live.owned if a.name == "recsys-prod-report" and a.kind == "CronWorkflow")]
    assert owners.meta["field_owners"] == {"kubectl-edit": ["/spec"]}  # the spec is one atomic field in Argo's CRD

    assert cluster.apply().code == 0
    assert cluster.objects("CronWorkflow")["recsys-prod-report"]["spec"]["suspend"] is False
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0


def test_an_orphan_of_a_kind_no_longer_desired_is_found_through_the_inventory(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    cluster.edit("    triggers:\n      - after: ingest\n", "")  # features no longer runs after ingest
    seen = _record_lists(cluster)
    planned = cluster.flowplan("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.text
    assert f"- cluster.EventSource.{NAMESPACE}/recsys-prod-flow-events" in planned.out
    assert f"- cluster.Sensor.{NAMESPACE}/recsys-prod-features" in planned.out
    assert ("list eventsources", {"labelSelector": [
        "app.kubernetes.io/managed-by=flowplan,flowplan.dev/project=recsys,flowplan.dev/branch=prod"
    ], "limit": ["500"]}) in seen  # fmt: skip
    assert cluster.apply().code == 0
    assert cluster.objects("EventSource") == {}


def test_an_untracked_object_with_our_markers_is_reported_and_left_alone(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    stray = cluster.server.put_object(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTemplate",
            "metadata": {
                "name": "recsys-prod-handmade",
                "namespace": NAMESPACE,
                "labels": {
                    "app.kubernetes.io/managed-by": "flowplan",
                    "flowplan.dev/project": "recsys",
                    "flowplan.dev/branch": "prod",
                },
            },
            "spec": {"entrypoint": "x"},
        }
    )
    cluster.proxy.reset_counts()
    result = cluster.apply()
    assert result.code == 0
    assert "carry this project's markers but are not in flowplan's inventory" in result.out
    assert only_lists(cluster.counts())
    kept = cluster.objects("WorkflowTemplate")["recsys-prod-handmade"]
    assert kept["metadata"]["resourceVersion"] == stray["metadata"]["resourceVersion"]


def test_the_triggers_example_round_trips_across_two_namespaces(cluster: Cluster) -> None:
    manifest = str(REPO / "examples" / "triggers" / "flows.yaml")
    args = ["-f", manifest, "--var", "slack_token=xoxb-sentinel"]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        assert run(["apply", *args, "--auto-approve"]) == 0, sink.getvalue()
        cluster.proxy.reset_counts()
        assert run(["plan", *args, "--detailed-exitcode"]) == 0, sink.getvalue()
    assert only_lists(cluster.counts())
    assert cluster.server.list_objects("Sensor", "argo-events")
    assert cluster.server.list_objects("CronWorkflow", "payments")
    template = cluster.server.list_objects("WorkflowTemplate", "payments")
    assert "xoxb-sentinel" in json.dumps(template)  # a sensitive value reaches the deployed object
    assert "xoxb-sentinel" not in sink.getvalue()


def test_the_kubeconfig_refresh_runs_at_most_once_a_second(cluster: Cluster, monkeypatch: Any) -> None:
    """The kubeconfig loader's hook sets the host again before every request, and setting the host
    reads the whole environment for proxies (a third of the client's CPU per write). The hook
    installs itself again each time it runs, so throttling it once was not enough: after the first
    refresh every request ran it again."""
    from kubernetes.client import configuration as k8s_configuration

    from backends.argo.client import KINDS

    reads: list[int] = []
    real = k8s_configuration.getproxies

    def counting() -> Any:
        reads.append(1)
        return real()

    monkeypatch.setattr(k8s_configuration, "getproxies", counting)
    kube = cluster.backend().kube
    kube.list(KINDS["ConfigMap"], NAMESPACE)  # opening the client and the first refresh read it
    before = len(reads)
    for _ in range(40):
        kube.list(KINDS["ConfigMap"], NAMESPACE)
    assert len(reads) - before <= 1  # at most one more refresh, if a second passed (was: one per request)
